#!/usr/bin/env bash
# Engine speed on realistic sizes: synthesizes the tinyllama-1.1b shape in Q8_0 and Q4_0 (in a
# temporary folder, never the repo) and prints prompt (pp128) and generation (tg128) speed for
# 1 and 2 threads, with the machine's read bandwidth measured in the same run, then stories260K
# (a real 260K-parameter file) for 1 and 2 threads.
# Usage: bench/engine.sh [HERD_BINARY]   (default build/herd; `make bench` runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
herd=${1:-build/herd}
vocab=${HERD_SHARED:-../shared}/models/llama-2-tiny-random.gguf
tmp=$(mktemp -d /tmp/herd-bench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

printf '%-6s %-7s %10s %10s %10s %10s %8s\n' type threads 'pp tok/s' 'tg tok/s' 'tg GB/s' 'membw GB/s' 'tg/bw'
for type in Q8_0 Q4_0; do
  "$herd" synth --shape tinyllama-1.1b --type "$type" --vocab-from "$vocab" -o "$tmp/m.gguf" 2>/dev/null
  for t in 1 2; do
    "$herd" bench -m "$tmp/m.gguf" -p 128 -n 128 -t "$t" -r 3 --membw --json >"$tmp/r.json"
    jq -r --arg type "$type" --arg t "$t" \
      '[$type, $t, (.pp_tok_s.median*10|round/10), (.tg_tok_s.median*10|round/10), (.tg_gb_s*100|round/100),
        (.membw_gb_s*100|round/100), ((.tg_share_of_membw*100|round|tostring) + "%")] | @tsv' "$tmp/r.json" |
      awk -F'\t' '{printf "%-6s %-7s %10s %10s %10s %10s %8s\n", $1, $2, $3, $4, $5, $6, $7}'
  done
done

# The tiny model, where per-phase overhead rather than bandwidth decides (a real file, F32).
stories=${HERD_SHARED:-../shared}/models/stories260K.gguf
printf '\n%-14s %-7s %10s %10s\n' model threads 'pp tok/s' 'tg tok/s'
for t in 1 2; do
  "$herd" bench -m "$stories" -p 128 -n 128 -t "$t" -r 5 --json |
    jq -r --arg t "$t" '["stories260K", $t, (.pp_tok_s.median|round), (.tg_tok_s.median|round)] | @tsv' |
    awk -F'\t' '{printf "%-14s %-7s %10s %10s\n", $1, $2, $3, $4}'
done
