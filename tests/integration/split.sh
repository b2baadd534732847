#!/usr/bin/env bash
# herd split: the real binary on good and bad requests (stdin → JSON on stdout / error on stderr).
set -u
HERD=${HERD:?path of the herd binary}
command -v jq >/dev/null || { echo "jq not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

req() { # params JSON → full request
	printf '{"command":"EXECUTE_TASK","request_id":"it-1","from":"t","timestamp":1700000000,"params":%s}' "$1"
}

# good: text, 3 fragments; the spans concatenate back to the input
text='First paragraph here.\n\nSecond one, a bit longer. It has two sentences.\n\nThird and last.'
req "{\"task_type\":\"llama_inference\",\"model_name\":\"m\",\"input_data\":\"$text\",\"num_fragments\":3,\"max_tokens\":8,\"temperature\":0,\"custom\":[1,2]}" >"$tmp/good.json"
if "$HERD" split <"$tmp/good.json" >"$tmp/out.json" 2>"$tmp/err"; then
	jq -e '.fragments | length == 3' "$tmp/out.json" >/dev/null || fail "want 3 fragments"
	jq -e '.job.total_fragments == 3 and .job.input_kind == "text"' "$tmp/out.json" >/dev/null || fail "job summary"
	jq -e '[.fragments[].params.task_type] | all(. == "llama_fragment")' "$tmp/out.json" >/dev/null || fail "task_type"
	jq -e '[.fragments[].params.custom] | all(. == [1,2])' "$tmp/out.json" >/dev/null || fail "custom param not preserved"
	jq -e '[.fragments[] | .params.fragment_id == "\(.params.job_id)-frag-\(.params.fragment_index)"] | all' "$tmp/out.json" >/dev/null || fail "fragment ids"
	joined=$(jq -j '.fragments[].params.input_data' "$tmp/out.json")
	want=$(printf "$text")
	[ "$joined" = "$want" ] || fail "spans do not tile the input: '$joined'"
else
	fail "good request exited $? ($(cat "$tmp/err"))"
fi

# --fragments overrides num_fragments; an array job
req '{"model_name":"m","input_data":["a","b","c","d","e"],"num_fragments":1}' >"$tmp/arr.json"
"$HERD" split --fragments 2 <"$tmp/arr.json" >"$tmp/out2.json" 2>"$tmp/err" || fail "array request exited $?"
jq -e '.fragments | length == 2' "$tmp/out2.json" >/dev/null || fail "--fragments 2: want 2 fragments"
jq -e '.fragments[1].params.input_data == ["d","e"]' "$tmp/out2.json" >/dev/null || fail "array items"

# bad input: exit 2, the message on stderr, nothing on stdout
bad() { # name, stdin text, expected stderr substring, [args...]
	local name=$1 input=$2 want=$3
	shift 3
	printf '%s' "$input" | "$HERD" split "$@" >"$tmp/bout" 2>"$tmp/berr"
	local rc=$?
	[ $rc -eq 2 ] || fail "$name: exit $rc, want 2"
	grep -qF -- "$want" "$tmp/berr" || fail "$name: stderr '$(cat "$tmp/berr")' lacks '$want'"
	[ ! -s "$tmp/bout" ] || fail "$name: wrote to stdout"
}
bad "malformed" '{"command": "EXECUTE_TASK",' "malformed JSON at line 1"
bad "no model" "$(req '{"input_data":"x"}')" "params.model_name: required"
bad "zero fragments" "$(req '{"model_name":"m","input_data":"x","num_fragments":0}')" "params.num_fragments: must be 1..16384, got 0"
bad "bad input_data" "$(req '{"model_name":"m","input_data":7}')" "params.input_data: must be a string or an array"
bad "negative max_tokens" "$(req '{"model_name":"m","input_data":"x","max_tokens":-1}')" "params.max_tokens: must be 1..32768, got -1"
bad "empty stdin" "" "empty body"
bad "bad --fragments" "$(req '{"model_name":"m","input_data":"x"}')" "--fragments: must be 1..16384" --fragments 0
bad "deep" "$(req "{\"model_name\":\"m\",\"input_data\":\"x\",\"d\":$(printf '[%.0s' {1..100})$(printf ']%.0s' {1..100})}")" "JSON nesting must be at most 64 deep"

[ $fails -eq 0 ] && echo "split: all checks passed"
exit $((fails > 0))
