#!/usr/bin/env bash
# herd generate / herd perplexity as a user runs them: the greedy story of stories260K for
# "Once upon a time" as text, as ids and as JSON (all from llama.cpp's reference), perplexity,
# and bad arguments exiting 2 with the option named.
set -euo pipefail
: "${HERD:?}" "${HERD_SHARED:?}"
model=$HERD_SHARED/models/stories260K.gguf
ref=$HERD_SHARED/reference/stories260K-F32-greedy48-kvf32.json
[ -f "$model" ] && [ -f "$ref" ] || exit 77
tmp=$(mktemp -d /tmp/herd-generate-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

want_text=$(jq -r '.results[] | select(.name == "p01_once") | .generated_text' "$ref")
want_ids=$(jq -r '.results[] | select(.name == "p01_once") | .generated_ids | map(tostring) | join(" ")' "$ref")

"$HERD" generate -m "$model" -p "Once upon a time" -n 48 --temp 0 -t 2 >"$tmp/out" 2>"$tmp/err"
[ "$(cat "$tmp/out")" = "$want_text" ] || fail "text: $(cat "$tmp/out")"
grep -q "tok/s" "$tmp/err" || fail "no speed report on stderr: $(cat "$tmp/err")"

"$HERD" generate -m "$model" -p "Once upon a time" -n 48 --temp 0 --ids >"$tmp/ids" 2>/dev/null
[ "$(cat "$tmp/ids")" = "$want_ids" ] || fail "ids: $(cat "$tmp/ids")"

printf 'Once upon a time' >"$tmp/prompt.txt"
"$HERD" generate -m "$model" -f "$tmp/prompt.txt" -n 48 --temp 0 --json >"$tmp/json" 2>/dev/null
[ "$(jq -r .text "$tmp/json")" = "$want_text" ] || fail "json text"
[ "$(jq -r '.ids | map(tostring) | join(" ")' "$tmp/json")" = "$want_ids" ] || fail "json ids"
[ "$(jq -r .prompt_tokens "$tmp/json")" = 5 ] || fail "json prompt_tokens"

# same seed, same text; sampling options accepted
a=$("$HERD" generate -m "$model" -p "Lily" -n 20 --temp 0.9 --top-k 20 --top-p 0.9 --min-p 0.05 --repeat-penalty 1.1 --seed 5 2>/dev/null)
b=$("$HERD" generate -m "$model" -p "Lily" -n 20 --temp 0.9 --top-k 20 --top-p 0.9 --min-p 0.05 --repeat-penalty 1.1 --seed 5 2>/dev/null)
[ "$a" = "$b" ] || fail "same seed gave different text"

ppl=$("$HERD" perplexity -m "$model" -f "$HERD_SHARED/reference/ppl-text.txt" -c 128 --json | jq -r .ppl)
awk -v p="$ppl" 'BEGIN { exit !(p > 3.7389 && p < 3.7429) }' || fail "perplexity $ppl, llama.cpp 3.7409"

# bad input: exit 2 and the option named
set +e
"$HERD" generate -m "$model" -p x --temp -1 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q -- "--temp" "$tmp/err" || fail "--temp -1: rc $rc, $(cat "$tmp/err")"
"$HERD" generate -m "$model" -p x -n abc 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q -- "-n" "$tmp/err" || fail "-n abc: rc $rc"
"$HERD" generate -p x 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q -- "-m MODEL" "$tmp/err" || fail "no -m: rc $rc"
"$HERD" generate -m "$model" -p "Lily and Tom went to the park" -c 4 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "context" "$tmp/err" || fail "context overflow: rc $rc, $(cat "$tmp/err")"
"$HERD" generate -m /nonexistent.gguf -p x 2>"$tmp/err"; rc=$?
[ $rc = 1 ] || fail "missing model: rc $rc"
"$HERD" perplexity -m "$model" -f "$HERD_SHARED/reference/ppl-text.txt" -c 7 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q -- "-c" "$tmp/err" || fail "perplexity -c 7: rc $rc"
set -e
echo "generate: ok"
