#!/usr/bin/env bash
# herd submit against two real nodes: the text it prints is the job's combined output (the
# same as a plain curl of the same job), --stream prints the same bytes, --json the whole
# answer, progress goes to stderr only; refused jobs exit 1 with the node's message, bad
# usage exits 2. herd nodes lists the node.
source "$(dirname "$0")/lib/node.bash"

start_node B -m "$MODEL" --threads 1
start_node A -m "$MODEL" --threads 1 --peer "${node_url[B]}"
A=${node_url[A]}

printf 'Tom had a kite. It was red and blue.\n\nHe ran up the hill with it. The wind was strong.\n\nThe kite flew up high, and Tom laughed.\n' >"$tmp/story.txt"
flags=(--model stories260K --fragments 3 --max-tokens 8 --temp 0)

HERD_PROGRESS=1 "$HERD" submit --to "$A" -f "$tmp/story.txt" "${flags[@]}" >"$tmp/out.txt" 2>"$tmp/err.txt" ||
	fail "submit exited $?: $(cat "$tmp/err.txt")"
grep -q '3/3 fragments' "$tmp/err.txt" || fail "no progress on stderr: $(cat "$tmp/err.txt")"
grep -q 'fragments' "$tmp/out.txt" && fail "progress leaked to stdout"

params=$(jq -cn --rawfile t "$tmp/story.txt" '{model_name: "stories260K", input_data: $t,
	num_fragments: 3, max_tokens: 8, temperature: 0}')
envelope EXECUTE_TASK "$params" >"$tmp/req.json"
post "$A/v1/command" "$tmp/req.json" "$tmp/res.json" >/dev/null
want=$(jq -r .result.output "$tmp/res.json")
[ -n "$want" ] || fail "plain job gave no output"
[ "$(cat "$tmp/out.txt")" = "$want" ] || fail "submit printed '$(cat "$tmp/out.txt")', the job's output is '$want'"

"$HERD" submit --to "$A" -f "$tmp/story.txt" "${flags[@]}" --stream -q >"$tmp/stream.txt" 2>"$tmp/err2.txt" ||
	fail "submit --stream exited $?: $(cat "$tmp/err2.txt")"
[ "$(cat "$tmp/stream.txt")" = "$want" ] || fail "--stream printed '$(cat "$tmp/stream.txt")'"

"$HERD" submit --to "$A" "$tmp/req.json" --json -q >"$tmp/json.txt" || fail "submit REQUEST.json --json exited $?"
jq -e '.status == "success" and .result.fragments_processed == 3 and (.result.fragment_results | length == 3)' \
	"$tmp/json.txt" >/dev/null || fail "--json: $(head -c 300 "$tmp/json.txt")"
[ "$(jq -r .result.output "$tmp/json.txt")" = "$want" ] || fail "--json output differs"

"$HERD" submit --to "$A" -f "$tmp/story.txt" --model nope -q 2>"$tmp/err3.txt"
rc=$?
[ "$rc" = 1 ] || fail "unknown model: exit $rc, want 1"
grep -q "nope" "$tmp/err3.txt" || fail "unknown model: message does not name it: $(cat "$tmp/err3.txt")"
"$HERD" submit --to "$A" -f "$tmp/story.txt" --model stories260K --max-tokens 0 -q 2>"$tmp/err4.txt"
[ $? = 1 ] && grep -q 'max_tokens' "$tmp/err4.txt" || fail "bad max_tokens: $(cat "$tmp/err4.txt")"
"$HERD" submit -f "$tmp/story.txt" --model stories260K 2>/dev/null
[ $? = 2 ] || fail "missing --to must exit 2"
"$HERD" submit --to "$A" -f "$tmp/story.txt" 2>/dev/null
[ $? = 2 ] || fail "-f without --model must exit 2"
"$HERD" submit --to "$A" -f "$tmp/story.txt" --model stories260K --temp warm 2>/dev/null
[ $? = 2 ] || fail "--temp warm must exit 2"

"$HERD" nodes --to "$A" --json >"$tmp/nodes.json" || fail "herd nodes exited $?"
jq -e --arg a "${node_id[A]}" '[.nodes[] | .peer_id // .node_id // .id] | index($a) != null' "$tmp/nodes.json" >/dev/null ||
	fail "herd nodes does not list A: $(head -c 300 "$tmp/nodes.json")"

stop_node A
stop_node B
finish
