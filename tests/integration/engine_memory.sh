#!/usr/bin/env bash
# Resident memory while generating stays within the model file plus the KV cache plus 10%, on
# the tinyllama-1.1b shape in Q8_0 and Q4_0 — also where the engine packs the matrices into a
# copy of its own (AVX-512 CPUs): the file's pages of them are released as they are packed.
# Peak RSS is herd bench's (VmHWM, read before its bandwidth buffer).
set -euo pipefail
HERD=${HERD:-build/herd}
SHARED=${HERD_SHARED:-../shared}
tmp=$(mktemp -d /tmp/herd-memory-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for type in Q8_0 Q4_0; do
  "$HERD" synth --shape tinyllama-1.1b --type "$type" --vocab-from "$SHARED/models/llama-2-tiny-random.gguf" -o "$tmp/m.gguf" 2>/dev/null
  "$HERD" bench -m "$tmp/m.gguf" -p 16 -n 32 -r 1 --json > "$tmp/b.json"
  read -r rss file kv < <(jq -r '"\(.peak_rss_bytes) \(.file_bytes) \(.kv_cache_bytes)"' "$tmp/b.json")
  [ "$rss" -gt $((file / 2)) ] || fail "$type: peak RSS $rss below half the file's $file bytes: not measured?"
  limit=$(( (file + kv) * 11 / 10 ))
  [ "$rss" -le "$limit" ] || fail "$type: peak RSS $rss > $limit (file $file + KV $kv + 10%)"
  echo "$type: peak RSS $((rss >> 20)) MiB, file $((file >> 20)) MiB + KV $((kv >> 20)) MiB"
  rm -f "$tmp/m.gguf"
done
echo "engine_memory: ok"
