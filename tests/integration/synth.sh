#!/usr/bin/env bash
# herd synth: writes loadable random-weight models of a given shape, deterministically;
# herd bench measures them.
set -euo pipefail
HERD=${HERD:-build/herd}
SHARED=${HERD_SHARED:-../shared}
tmp=$(mktemp -d /tmp/herd-synth-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for type in Q8_0 Q4_0 Q4_K F16; do
  "$HERD" synth --shape smollm-135m --type "$type" --vocab-from "$SHARED/models/stories260K.gguf" -o "$tmp/a.gguf" --seed 7 2>/dev/null
  "$HERD" gguf "$tmp/a.gguf" > "$tmp/info"
  grep -q 'llama.embedding_length *u32 576' "$tmp/info" || fail "$type: embedding length"
  grep -q 'llama.block_count *u32 30' "$tmp/info" || fail "$type: block count"
  grep -q 'llama.attention.head_count_kv *u32 3' "$tmp/info" || fail "$type: kv heads"
  grep -Eq "^[0-9]+ +blk.0.ffn_down.weight +$type +\[1536, 576\]" "$tmp/info" || fail "$type: ffn_down type/shape"
  # generates (finite logits: greedy picks real tokens)
  out=$("$HERD" generate -m "$tmp/a.gguf" -p "Once upon a time" -n 4 --temp 0 --ids 2>/dev/null)
  [ "$(wc -w <<<"$out")" -eq 4 ] || fail "$type: generate gave '$out'"
done

# deterministic for a seed, different for another
"$HERD" synth --shape stories-260k --type Q8_0 --vocab-from "$SHARED/models/stories260K.gguf" -o "$tmp/b1.gguf" --seed 3 2>/dev/null
"$HERD" synth --shape stories-260k --type Q8_0 --vocab-from "$SHARED/models/stories260K.gguf" -o "$tmp/b2.gguf" --seed 3 2>/dev/null
"$HERD" synth --shape stories-260k --type Q8_0 --vocab-from "$SHARED/models/stories260K.gguf" -o "$tmp/b3.gguf" --seed 4 2>/dev/null
cmp -s "$tmp/b1.gguf" "$tmp/b2.gguf" || fail "same seed, different files"
cmp -s "$tmp/b1.gguf" "$tmp/b3.gguf" && fail "different seeds, same file"
# the tokenizer came along: same ids as the source model
[ "$("$HERD" tokenize -m "$tmp/b1.gguf" -p "Lily and Tom")" = "$("$HERD" tokenize -m "$SHARED/models/stories260K.gguf" -p "Lily and Tom")" ] || fail "tokenizer not copied"

# bad arguments
"$HERD" synth --shape no-such --type Q8_0 --vocab-from "$SHARED/models/stories260K.gguf" -o "$tmp/x.gguf" 2>/dev/null && fail "unknown shape accepted"
"$HERD" synth --shape stories-260k --type Q8_K --vocab-from "$SHARED/models/stories260K.gguf" -o "$tmp/x.gguf" 2>/dev/null && fail "Q8_K accepted"

# bench: JSON with the fields the README's table uses
"$HERD" bench -m "$tmp/b1.gguf" -p 16 -n 8 -r 2 -t 1 --json > "$tmp/bench.json"
jq -e '.pp_tok_s.median > 0 and .tg_tok_s.median > 0 and .weight_bytes_per_token > 0 and .tg_gb_s > 0' "$tmp/bench.json" >/dev/null || fail "bench json"
# --membw: a real read bandwidth, and with one repetition the share is generation's GB/s over it
"$HERD" bench -m "$tmp/b1.gguf" -p 4 -n 4 -r 1 -t 2 --membw --json > "$tmp/bw.json"
jq -e '.membw_gb_s > 0.5 and .tg_share_of_membw > 0 and
       ((.tg_share_of_membw - .tg_gb_s / .membw_gb_s) | fabs) < 1e-6 * .tg_share_of_membw' \
  "$tmp/bw.json" >/dev/null || fail "bench --membw json: $(cat "$tmp/bw.json")"
"$HERD" bench -m "$tmp/none.gguf" 2>/dev/null && fail "bench of a missing file succeeded"
echo "synth: ok"
