#!/usr/bin/env bash
# A worker SIGSTOPped in the middle of a job (alive, its connections open, but silent): its
# fragment is given to the other worker by a straggler backup or after its deadline, the job
# completes, and its output is byte-identical to the same job on a healthy swarm. The first
# (healthy) job also teaches the coordinator the workers' real speed, so the second job's
# deadlines are short (that standing carries over between jobs).
source "$(dirname "$0")/lib/node.bash"
source "$(dirname "$0")/lib/faults.bash"

start_node B -m "$MODEL" --slots 1 --threads 1
start_node C -m "$MODEL" --slots 1 --threads 1
HERD_SCHED_TIMEOUT_FLOOR_MS=3000 start_node A --threads 1 --peer "${node_url[B]}" \
	--peer "${node_url[C]}"

job_request "$tmp/ref.json" stop-ref 12 1500
code=$(post "${node_url[A]}/v1/command" "$tmp/ref.json" "$tmp/ref.out")
[ "$code" = 200 ] || fail "healthy job: HTTP $code $(head -c 300 "$tmp/ref.out")"
ref_s=$(jq -r '.result.wall_time_ms / 1000' "$tmp/ref.out")

job_request "$tmp/req.json" stop-1 12 1500
t0=$(now_s)
run_job_bg A "$tmp/req.json" "$tmp/res.json" 2
kill -STOP "${node_pid[C]}"
echo "stopped C with $(job_field "${node_url[A]}" "$job" fragments_done) fragment(s) done"
wait "$cpid"
took=$(elapsed "$t0")
code=$(cat "$tmp/res.json.code")
kill -CONT "${node_pid[C]}"
echo "healthy job ${ref_s}s, job with a stopped worker ${took}s"
[ "$code" = 200 ] || fail "job with a stopped worker: HTTP $code $(head -c 400 "$tmp/res.json")"
cmp -s <(jq -r .result.output "$tmp/ref.out") <(jq -r .result.output "$tmp/res.json") ||
	fail "output differs from the healthy swarm's"
jq -e '.result.fragments_processed == 12' "$tmp/res.json" >/dev/null ||
	fail "not every fragment processed"
# Generous (the machine is shared, builds may be sanitized): a hang would be the 30-minute
# HTTP timeout, and without backups or deadlines the job would never end.
limit=$(echo "3 * $ref_s + 30" | bc)
[ "$(echo "$took < $limit" | bc)" = 1 ] || fail "the job took ${took}s with one worker stopped (limit ${limit}s)"
curl -s "${node_url[A]}/v1/jobs/$job" >"$tmp/state.json"
echo "retries $(jq -c '.retries' "$tmp/state.json"), errors $(jq -c '.errors' "$tmp/state.json")"
echo "fragments by node: $(jq -c '[.result.fragment_results[].node_id[0:8]] | group_by(.) | map({(.[0]): length}) | add' "$tmp/res.json")"

# Again with backups only for stuck attempts (HERD_SCHED_STRAGGLER_DONE_FRAC=1): the stopped
# worker's fragment moves when it runs past twice its expected time, or at its deadline.
start_node D -m "$MODEL" --slots 1 --threads 1
HERD_SCHED_TIMEOUT_FLOOR_MS=2000 HERD_SCHED_STRAGGLER_DONE_FRAC=1 start_node E --threads 1 \
	--peer "${node_url[B]}" --peer "${node_url[D]}"
code=$(post "${node_url[E]}/v1/command" "$tmp/ref.json" "$tmp/ref2.out")
[ "$code" = 200 ] || fail "healthy job on E: HTTP $code"
job_request "$tmp/req3.json" stop-3 12 1500
t0=$(now_s)
run_job_bg E "$tmp/req3.json" "$tmp/res3.json" 2
kill -STOP "${node_pid[D]}"
wait "$cpid"
took=$(elapsed "$t0")
kill -CONT "${node_pid[D]}"
echo "no tail backups: job with a stopped worker ${took}s, errors $(job_field "${node_url[E]}" "$job" errors | jq -c .)"
[ "$(cat "$tmp/res3.json.code")" = 200 ] || fail "no tail backups: HTTP $(cat "$tmp/res3.json.code") $(head -c 300 "$tmp/res3.json")"
cmp -s <(jq -r .result.output "$tmp/ref.out") <(jq -r .result.output "$tmp/res3.json") ||
	fail "no tail backups: output differs from the healthy swarm's"
[ "$(echo "$took < $limit" | bc)" = 1 ] || fail "no tail backups: the job took ${took}s"
stop_node A
stop_node E
stop_node B
stop_node C
stop_node D
finish
