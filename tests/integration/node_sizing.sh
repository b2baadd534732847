#!/usr/bin/env bash
# Dynamic fragment sizing with real nodes: a text job without num_fragments is cut into
# min(6 x slots, tokens / 256) fragments (at least 1), where tokens is the input's length in
# the model's own tokens (counted here with `herd tokenize`) and slots those of every node
# serving the model. A short text gives 1 fragment; a longer one more; more slots more. The
# result says num_fragments_auto, and its output equals the same job with that count asked
# for explicitly. A coordinator without the model estimates 4 bytes a token. Arrays: min(6 x
# slots, items).
source "$(dirname "$0")/lib/node.bash"

story='Once upon a time, there was a little girl named Lily. She loved to play in the park with her red ball. Every day she ran to the big tree and back.

One day, Lily saw a small dog under the tree. The dog was sad because it was lost. Lily gave the dog some of her bread, and the dog wagged its tail.
'
long=""
for i in $(seq 40); do long+="$story"; done
medium=""
for i in $(seq 6); do medium+="$story"; done

# expected TEXT SLOTS: the rule, with the token count from herd tokenize (no BOS, as the node)
expected() {
	local tokens n
	tokens=$("$HERD" tokenize -m "$MODEL" -p "$1" --no-bos | wc -w)
	n=$((6 * $2))
	[ $((tokens / 256)) -lt $n ] && n=$((tokens / 256))
	[ $n -lt 1 ] && n=1
	echo $n
}

# job URL NAME TEXT [NUM_FRAGMENTS]: posts a greedy text job, answer in $tmp/NAME.json
job() {
	local params
	params=$(jq -cn --arg t "$3" --arg n "${4:-}" '{model_name: "stories260K", input_data: $t,
		max_tokens: 4, temperature: 0, context_overlap: 64}
		+ (if $n == "" then {} else {num_fragments: ($n | tonumber)} end)')
	envelope EXECUTE_TASK "$params" "$2" >"$tmp/$2.req"
	local code
	code=$(post "$1/v1/command" "$tmp/$2.req" "$tmp/$2.json")
	[ "$code" = 200 ] || fail "$2: HTTP $code: $(head -c 300 "$tmp/$2.json")"
}

# check URL NAME TEXT SLOTS: the automatic count is the rule's, marked, and the output equals
# the explicit job's with that count. Prints the count.
check() {
	local want got
	want=$(expected "$3" "$4")
	job "$1" "$2" "$3"
	got=$(jq -r '.result.fragments_processed' "$tmp/$2.json")
	[ "$got" = "$want" ] || fail "$2: $got fragments, the rule gives $want ($4 slots)"
	jq -e '.result.num_fragments_auto == true' "$tmp/$2.json" >/dev/null ||
		fail "$2: result does not say num_fragments_auto"
	job "$1" "$2-explicit" "$3" "$got"
	jq -e '.result | has("num_fragments_auto") | not' "$tmp/$2-explicit.json" >/dev/null ||
		fail "$2: an explicit count must not be marked automatic"
	[ "$(jq -r .result.output "$tmp/$2.json")" = "$(jq -r .result.output "$tmp/$2-explicit.json")" ] ||
		fail "$2: output differs from the job with num_fragments $got"
	echo "$got"
}

start_node A -m "$MODEL" --slots 2 --threads 1
A=${node_url[A]}
short=$(check "$A" short "$story" 2)
med=$(check "$A" medium "$medium" 2)
lng=$(check "$A" long "$long" 2)
echo "2 slots: short $short, medium $med, long $lng fragments"
[ "$short" = 1 ] || fail "a short text must be one fragment, got $short"
[ "$lng" -gt "$med" ] && [ "$med" -gt "$short" ] || fail "a longer text must get more fragments: $short, $med, $lng"

# More slots: B joins as A's peer (5 slots in all).
start_node B -m "$MODEL" --slots 3 --threads 1
start_node A2 -m "$MODEL" --slots 2 --threads 1 --peer "${node_url[B]}"
lng5=$(check "${node_url[A2]}" long5 "$long" 5)
echo "5 slots: long $lng5 fragments"
[ "$lng5" -gt "$lng" ] || fail "more slots must give more fragments: $lng with 2, $lng5 with 5"

# A coordinator without the model: 4 bytes a token (this text has about 2.5), B's 3 slots
# (not its own).
start_node C -m "$HERD_SHARED/models/stories260K-Q8_0.gguf" --slots 1 --threads 1 --peer "${node_url[B]}"
text=""
for i in $(seq 12); do text+="$story"; done
job "${node_url[C]}" est "$text"
bytes=$(printf '%s' "$text" | wc -c)
want=$(((bytes + 3) / 4 / 256))
[ $want -gt 18 ] && want=18
[ $want -lt 1 ] && want=1
got=$(jq -r .result.fragments_processed "$tmp/est.json")
[ "$got" = "$want" ] || fail "estimated count: $got, want $want ($bytes bytes, 3 slots)"

# Arrays: min(6 x slots, items): 24 items on 2 slots in 12 fragments of 2.
params=$(jq -cn '{model_name: "stories260K", max_tokens: 2, temperature: 0,
	input_data: [range(24) | "item \(.)"]}')
envelope EXECUTE_TASK "$params" arr >"$tmp/arr.req"
code=$(post "$A/v1/command" "$tmp/arr.req" "$tmp/arr.json")
[ "$code" = 200 ] || fail "array: HTTP $code"
jq -e '.result.fragments_processed == 12 and .result.num_fragments_auto == true' "$tmp/arr.json" \
	>/dev/null || fail "array of 24 on 2 slots: $(jq -c '.result | del(.fragment_results, .output)' "$tmp/arr.json")"

stop_node A
stop_node A2
stop_node B
stop_node C
finish
