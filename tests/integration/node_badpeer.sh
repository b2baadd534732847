#!/usr/bin/env bash
# A peer that answers badly: a small Python HTTP server (lib/fake_node.py) that passes
# NODE_INFO but answers every fragment with a wrong fragment_index (a buggy or lying node — no real herd node
# does that, so it has to be written here). The coordinator must check every answer: with
# a real node beside the liar, the bad fragments are retried there and the job succeeds
# with every fragment run by the real node; with only the liar, the job fails naming it
# and the rule that was broken.
source "$(dirname "$0")/lib/node.bash"
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }

start_fake liar liar0000000000000000000000000000 1
liar=$fake_url

start_node A -m "$MODEL" --threads 1 --peer "$liar"
# The liar must be known (NODE_INFO answered) before a job, or A alone runs it and nothing
# is there to reject: under a loaded CI machine a NODE_INFO can time out.
wait_liar() {
	for i in $(seq 50); do
		curl -s "${node_url[A]}/v1/nodes" | jq -e '[.nodes[] | select(.self == false and .verified)] | length == 1' >/dev/null 2>&1 && return
		sleep 0.2
	done
}
text='One fine day, a bird sat in a tree.\n\nIt sang a song for the sun.\n\nThen it flew home to its nest.\n\nThe end.'
params=$(jq -cn --arg t "$(printf "$text")" '{model_name: "stories260K", input_data: $t,
	num_fragments: 4, max_tokens: 4, temperature: 0}')
# Each job checks every answer. Under a loaded CI machine A's refresh of its peers before a job
# can time out on the liar, and A then runs the job alone: such a run proves nothing about
# rejection, so the job is posted again (up to 5 times, each once A lists the liar as
# verified again) until the liar took part.
for attempt in 1 2 3 4 5; do
	wait_liar
	envelope EXECUTE_TASK "$params" "bad-$attempt" >"$tmp/req.json"
	code=$(post "${node_url[A]}/v1/command" "$tmp/req.json" "$tmp/res.json")
	[ "$code" = 200 ] || fail "job beside a lying peer: HTTP $code $(head -c 300 "$tmp/res.json")"
	jq -e --arg a "${node_id[A]}" '.result.fragments_processed == 4 and
		([.result.fragment_results[].node_id] | all(. == $a)) and
		([.result.fragment_results[].output] | all(. != "lies"))' "$tmp/res.json" >/dev/null ||
		fail "a bad answer was accepted: $(jq -c '[.result.fragment_results[] | [.node_id, .output]]' "$tmp/res.json")"
	job=$(jq -r .result.job_id "$tmp/res.json")
	curl -s "${node_url[A]}/v1/jobs/$job" >"$tmp/state.json"
	jq -e '.retries >= 1 and (.errors | map(test("fragment_index")) | any)' "$tmp/state.json" >/dev/null && break
	[ $attempt = 5 ] && fail "job state does not show the retried bad answers: $(jq -c '{retries, errors}' "$tmp/state.json")"
	sleep 1
done

start_node D --threads 1 --peer "$liar"
code=$(post "${node_url[D]}/v1/command" "$tmp/req.json" "$tmp/res2.json")
jq -e '.status == "error"' "$tmp/res2.json" >/dev/null || fail "job with only a lying peer succeeded"
msg=$(jq -r .error.message "$tmp/res2.json")
echo "$msg" | grep -q "$liar" || fail "error does not name the lying peer: $msg"
echo "$msg" | grep -q "fragment_index" || fail "error does not say what was wrong: $msg"
[ "$code" = 502 ] || fail "only a lying peer: HTTP $code, want 502"

stop_node A
stop_node D
finish
