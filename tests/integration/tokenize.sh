#!/bin/bash
# herd tokenize: ids as llama-tokenize printed them (reference/stories260K-tokenize.json), with and
# without BOS; a vocab-only GGUF (0 tensors); usage and bad-file errors with their exit codes.
set -u
: "${HERD:?} ${HERD_SHARED:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq missing" >&2; exit 77; }
ref="$HERD_SHARED/reference/stories260K-tokenize.json"
model="$HERD_SHARED/models/stories260K.gguf"
n=$(jq '.prompts | length' "$ref")
checked=0
for ((i = 0; i < n; i++)); do
	text=$(jq -r ".prompts[$i].text" "$ref")
	[ "$(jq -r ".prompts[$i].text_utf8_hex" "$ref")" = "$(printf '%s' "$text" | od -An -tx1 | tr -d ' \n')" ] || continue
	want=$(jq -r ".prompts[$i].ids_with_bos | map(tostring) | join(\" \")" "$ref")
	got=$("$HERD" tokenize -m "$model" -p "$text") || fail "prompt $i: exit $?"
	[ "$got" = "$want" ] || fail "prompt $i: got '$got', want '$want'"
	want=$(jq -r ".prompts[$i].ids_no_bos | map(tostring) | join(\" \")" "$ref")
	got=$("$HERD" tokenize -m "$model" -p "$text" --no-bos) || fail "prompt $i --no-bos: exit $?"
	[ "$got" = "$want" ] || fail "prompt $i --no-bos: got '$got', want '$want'"
	checked=$((checked + 1))
done
[ $checked -ge 10 ] || fail "only $checked prompts could be passed on the command line"
# vocab-only file; gpt-2 adds no BOS by default
got=$("$HERD" tokenize -m "$HERD_SHARED/models/vocab/ggml-vocab-gpt-2.gguf" -p "Hello world") || fail "gpt-2: exit $?"
[ "$got" = "15496 995" ] || fail "gpt-2: got '$got'"
# errors
"$HERD" tokenize -m "$model" >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing -p must exit 2"
"$HERD" tokenize -p x --bogus >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown flag must exit 2"
err=$("$HERD" tokenize -m /nonexistent.gguf -p x 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && [ -n "$err" ] || fail "missing model must exit 1 with a message (rc $rc)"
err=$("$HERD" tokenize -m "$HERD_SHARED/models/vocab/ggml-vocab-bert-bge.gguf" -p x 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q 'tokenizer.ggml.model' <<<"$err" || fail "bert vocab: rc $rc, '$err'"
echo "ok: $checked of $n prompts"
