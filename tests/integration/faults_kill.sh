#!/usr/bin/env bash
# A worker SIGKILLed in the middle of a job: its fragment (the connection breaks) runs again
# on the other worker, and the job's output is byte-identical to the same job on a healthy
# swarm (greedy decoding: the output does not depend on where a fragment ran).
source "$(dirname "$0")/lib/node.bash"
source "$(dirname "$0")/lib/faults.bash"

start_node B -m "$MODEL" --slots 1 --threads 1
start_node C -m "$MODEL" --slots 1 --threads 1
start_node A --threads 1 --peer "${node_url[B]}" --peer "${node_url[C]}"

job_request "$tmp/ref.json" kill-ref 12 1500
code=$(post "${node_url[A]}/v1/command" "$tmp/ref.json" "$tmp/ref.out")
[ "$code" = 200 ] || fail "healthy job: HTTP $code $(head -c 300 "$tmp/ref.out")"
jq -e --arg b "${node_id[B]}" --arg c "${node_id[C]}" '[.result.fragment_results[].node_id] |
	any(. == $b) and any(. == $c)' "$tmp/ref.out" >/dev/null ||
	fail "healthy job did not use both workers"

job_request "$tmp/req.json" kill-1 12 1500
run_job_bg A "$tmp/req.json" "$tmp/res.json" 2
kill -9 "${node_pid[C]}"
wait "${node_pid[C]}" 2>/dev/null
echo "killed C with $(job_field "${node_url[A]}" "$job" fragments_done) fragment(s) done"
wait "$cpid"
code=$(cat "$tmp/res.json.code")
[ "$code" = 200 ] || fail "job with a killed worker: HTTP $code $(head -c 400 "$tmp/res.json")"
cmp -s <(jq -r .result.output "$tmp/ref.out") <(jq -r .result.output "$tmp/res.json") ||
	fail "output differs from the healthy swarm's"
jq -e '.result.fragments_processed == 12' "$tmp/res.json" >/dev/null ||
	fail "not every fragment processed: $(jq -c .result.fragments_processed "$tmp/res.json")"
curl -s "${node_url[A]}/v1/jobs/$job" >"$tmp/state.json"
jq -e --arg c "${node_url[C]}" '.retries >= 1 and (.errors | map(contains($c)) | any)' \
	"$tmp/state.json" >/dev/null ||
	fail "the job does not show the failed attempt on C: $(jq -c '{retries, errors}' "$tmp/state.json")"
echo "fragments by node: $(jq -c '[.result.fragment_results[].node_id[0:8]] | group_by(.) | map({(.[0]): length}) | add' "$tmp/res.json")"
stop_node A
stop_node B
finish
