#!/usr/bin/env bash
# Three real nodes on 127.0.0.1; A knows B and C as --peer. A seed-format llama_inference job
# to A: the Complete Job Result format, every fragment processed, fragments spread over all
# three nodes; at temperature 0 the combined output equals, byte for byte, what
# `herd generate` prints for each fragment's prompt (from `herd split`, default template
# {context_before}{fragment}) joined in order. Then an array job, ten jobs at once, and a
# clean SIGTERM stop of every node.
source "$(dirname "$0")/lib/node.bash"
# The test asserts which nodes ran fragments: no straggler backups (they may move one).
export HERD_SCHED_STRAGGLER_DONE_FRAC=1

start_node B -m "$MODEL" --slots 1 --threads 1
start_node C -m "$MODEL" --slots 1 --threads 1
start_node A -m "$MODEL" --slots 1 --threads 1 --peer "${node_url[B]}" --peer "${node_url[C]}"
A=${node_url[A]}

story='Once upon a time, there was a little girl named Lily. She loved to play in the park with her red ball. Every day she ran to the big tree and back.

One day, Lily saw a small dog under the tree. The dog was sad because it was lost. Lily gave the dog some of her bread, and the dog wagged its tail.

Lily and the dog walked all around the park. They asked the birds and the ducks, but nobody knew where the dog lived. The sun began to go down.

Then a boy ran up to them. "Max! There you are!" he said. The dog jumped into his arms. The boy thanked Lily with a big smile.

The next day, the boy and Max came to the park again. Lily, the boy and Max played with the red ball until it was time to go home.

From that day on, they were best friends. Lily learned that being kind to others can bring you new friends.'

params=$(jq -cn --arg t "$story" '{task_type: "llama_inference", model_name: "stories260K",
	input_data: $t, max_tokens: 16, temperature: 0, top_p: 0.9, num_fragments: 6,
	context_overlap: 120}')
envelope EXECUTE_TASK "$params" job-req-1 >"$tmp/req.json"
code=$(post "$A/v1/command" "$tmp/req.json" "$tmp/res.json")
[ "$code" = 200 ] || fail "llama_inference: HTTP $code: $(head -c 400 "$tmp/res.json")"
jq -e '.command == "EXECUTE_TASK" and .request_id == "job-req-1" and .status == "success"' \
	"$tmp/res.json" >/dev/null || fail "envelope: $(head -c 300 "$tmp/res.json")"
jq -e '.result | (.output | type == "string") and (.total_tokens | type == "number")
	and (.total_processing_time_ms | type == "number") and .fragments_processed == 6
	and (.job_id | type == "string") and (.fragment_results | length == 6)' \
	"$tmp/res.json" >/dev/null || fail "complete result format: $(jq -c '.result | del(.fragment_results)' "$tmp/res.json")"
jq -e '[.result.fragment_results[].fragment_index] == [0,1,2,3,4,5]' "$tmp/res.json" >/dev/null ||
	fail "fragment results not in index order"
jq -e '([.result.fragment_results[].tokens_generated] | add) == .result.total_tokens' \
	"$tmp/res.json" >/dev/null || fail "total_tokens is not the sum over fragments"
ran_on=$(jq -r '[.result.fragment_results[].node_id] | unique | sort | join(" ")' "$tmp/res.json")
want=$(printf '%s\n' "${node_id[A]}" "${node_id[B]}" "${node_id[C]}" | sort | tr '\n' ' ' | sed 's/ $//')
[ "$ran_on" = "$want" ] || fail "fragments not spread over all three nodes: ran on '$ran_on', nodes '$want'"

# The same output, fragment by fragment, from herd generate on this machine.
"$HERD" split <"$tmp/req.json" >"$tmp/split.json" || fail "herd split failed"
nf=$(jq '.fragments | length' "$tmp/split.json")
[ "$nf" = 6 ] || fail "herd split gave $nf fragments"
: >"$tmp/want.txt"
for i in $(seq 0 $((nf - 1))); do
	jq -j ".fragments[$i].params | .context_before + .input_data" "$tmp/split.json" >"$tmp/prompt$i"
	"$HERD" generate -m "$MODEL" -f "$tmp/prompt$i" -n 16 --temp 0 -t 1 --json 2>/dev/null |
		jq -j .text >"$tmp/want$i" || fail "herd generate for fragment $i"
	[ -s "$tmp/want$i" ] || fail "herd generate gave nothing for fragment $i"
	cat "$tmp/want$i" >>"$tmp/want.txt"
	jq -j ".result.fragment_results[$i].output" "$tmp/res.json" >"$tmp/got$i"
	cmp -s "$tmp/got$i" "$tmp/want$i" || fail "fragment $i: node gave '$(cat "$tmp/got$i")', herd generate '$(cat "$tmp/want$i")'"
done
jq -j .result.output "$tmp/res.json" >"$tmp/got.txt"
cmp -s "$tmp/got.txt" "$tmp/want.txt" || fail "combined output differs from herd generate's, joined"

# Array input: one output per item, in input order (each item is its own prompt).
params=$(jq -cn '{task_type: "llama_inference", model_name: "stories260K", max_tokens: 8,
	temperature: 0, num_fragments: 3, input_data: ["Once upon a time", "The cat", "Tom and Sue",
	"One day", "The sun was"]}')
envelope EXECUTE_TASK "$params" >"$tmp/arr.json"
code=$(post "$A/v1/command" "$tmp/arr.json" "$tmp/arr_res.json")
[ "$code" = 200 ] || fail "array job: HTTP $code $(head -c 300 "$tmp/arr_res.json")"
jq -e '.result.output | type == "array" and length == 5' "$tmp/arr_res.json" >/dev/null ||
	fail "array output shape: $(jq -c .result.output "$tmp/arr_res.json")"
i=0
for item in "Once upon a time" "The cat" "Tom and Sue" "One day" "The sun was"; do
	w=$("$HERD" generate -m "$MODEL" -p "$item" -n 8 --temp 0 -t 1 --json 2>/dev/null | jq -r .text)
	g=$(jq -r ".result.output[$i]" "$tmp/arr_res.json")
	[ "$g" = "$w" ] || fail "array item $i: node '$g', herd generate '$w'"
	i=$((i + 1))
done

# Ten jobs at once, to different coordinators: all complete, each with its own correct output.
curls=()
for k in $(seq 0 9); do
	params=$(jq -cn --arg t "$story" --argjson k "$k" '{model_name: "stories260K",
		input_data: $t, max_tokens: 8, temperature: 0, num_fragments: (2 + $k % 3),
		context_overlap: 64}')
	envelope EXECUTE_TASK "$params" "many-$k" >"$tmp/many$k.json"
	node=$(echo A B C | cut -d' ' -f$((k % 3 + 1)))
	post "${node_url[$node]}/v1/command" "$tmp/many$k.json" "$tmp/many_res$k.json" >"$tmp/many_code$k" &
	curls+=($!)
done
wait "${curls[@]}"
for k in $(seq 0 9); do
	[ "$(cat "$tmp/many_code$k")" = 200 ] || fail "concurrent job $k: HTTP $(cat "$tmp/many_code$k")"
	nfk=$((2 + k % 3))
	jq -e --argjson n "$nfk" --arg r "many-$k" '.status == "success" and .request_id == $r
		and .result.fragments_processed == $n' \
		"$tmp/many_res$k.json" >/dev/null || fail "concurrent job $k: $(head -c 300 "$tmp/many_res$k.json")"
done
# same request shape (fragments 2, 3, 4 repeat) must give the same output whatever ran it
for k in 0 1 2; do
	for j in $((k + 3)) $((k + 6)); do
		a=$(jq -r .result.output "$tmp/many_res$k.json")
		b=$(jq -r .result.output "$tmp/many_res$j.json")
		[ "$a" = "$b" ] || fail "jobs $k and $j (same split, temperature 0) differ"
	done
done

stop_node A
stop_node B
stop_node C
finish
