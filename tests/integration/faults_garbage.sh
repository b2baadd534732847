#!/usr/bin/env bash
# A worker that answers garbage: a small Python HTTP server (lib/fake_node.py) that answers
# NODE_INFO correctly and every fragment with, in turn, malformed JSON, another fragment's
# id, or a wrong job id. Its answers are rejected, the fragments run on the real worker, the
# output is byte-identical to a healthy swarm's, and its reputation (GET /v1/nodes and
# FIND_NODES) falls below the real worker's.
source "$(dirname "$0")/lib/node.bash"
source "$(dirname "$0")/lib/faults.bash"
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }

start_fake garbage junk0000000000000000000000000000 3
junk=$fake_url

start_node B -m "$MODEL" --slots 2 --threads 1
start_node A --threads 1 --peer "${node_url[B]}" --peer "$junk"

# The reference: the same job on a healthy swarm (B alone, coordinating itself).
job_request "$tmp/req.json" garbage-1 8 200
code=$(post "${node_url[B]}/v1/command" "$tmp/req.json" "$tmp/ref.out")
[ "$code" = 200 ] || fail "healthy job: HTTP $code $(head -c 300 "$tmp/ref.out")"

# Three jobs: the scheduler of each starts from the standing the earlier ones left, and
# the garbage peer gets a try now and then (each kind of garbage comes up).
for k in 1 2 3; do
	sed "s/garbage-1/garbage-run$k/" "$tmp/req.json" >"$tmp/req$k.json"
	code=$(post "${node_url[A]}/v1/command" "$tmp/req$k.json" "$tmp/res.json")
	[ "$code" = 200 ] || fail "job $k beside a garbage peer: HTTP $code $(head -c 400 "$tmp/res.json")"
	cmp -s <(jq -r .result.output "$tmp/ref.out") <(jq -r .result.output "$tmp/res.json") ||
		fail "job $k: output differs from the healthy swarm's"
	jq -e --arg b "${node_id[B]}" '[.result.fragment_results[].node_id] | all(. == $b)' \
		"$tmp/res.json" >/dev/null || fail "job $k: a garbage answer was accepted"
	job=$(job_id_of A $k)
	curl -s "${node_url[A]}/v1/jobs/$job" | jq .errors >"$tmp/errors$k.json"
done
jq -s add "$tmp"/errors?.json >"$tmp/errors.json"
for why in 'bad answer [(]HTTP' 'fragment_id/fragment_index' 'result.job_id'; do
	jq -e --arg w "$why" 'map(test($w)) | any' "$tmp/errors.json" >/dev/null ||
		fail "no rejected answer matching '$why': $(jq -c . "$tmp/errors.json")"
done

curl -s "${node_url[A]}/v1/nodes" >"$tmp/nodes.json"
rep() { jq -r --arg id "$2" '.nodes[] | select(.peer_id == $id) | .reputation' "$1"; }
junk_rep=$(rep "$tmp/nodes.json" junk0000000000000000000000000000)
b_rep=$(rep "$tmp/nodes.json" "${node_id[B]}")
echo "reputation: garbage peer $junk_rep, real worker $b_rep"
[ "$(echo "$junk_rep < $b_rep" | bc -l)" = 1 ] || fail "the garbage peer's reputation did not fall"
jq -e '.nodes[] | select(.peer_id == "junk0000000000000000000000000000") |
	.standing.failed >= 1 and .standing.completed == 0' "$tmp/nodes.json" >/dev/null ||
	fail "standing of the garbage peer: $(jq -c '.nodes[].standing' "$tmp/nodes.json")"
envelope FIND_NODES '{}' >"$tmp/find.json"
post "${node_url[A]}/v1/command" "$tmp/find.json" "$tmp/found.json" >/dev/null
[ "$(rep <(jq .result "$tmp/found.json") junk0000000000000000000000000000)" = "$junk_rep" ] ||
	fail "FIND_NODES does not show the same reputation: $(jq -c .result.nodes "$tmp/found.json")"
"$HERD" nodes --to "${node_url[A]}" >"$tmp/table.txt" || fail "herd nodes failed"
cat "$tmp/table.txt"
grep -q EFF_TPS "$tmp/table.txt" || fail "herd nodes shows no standing columns"
stop_node A
stop_node B
finish
