#!/usr/bin/env bash
# CANCEL_JOB on a running job stops its fragments on every node: the coordinator tells each
# worker to stop the fragment it runs (CANCEL_JOB with fragment_id), the workers go idle
# within a few seconds (NODE_INFO load), the job ends "cancelled", and the workers still
# serve the next job.
source "$(dirname "$0")/lib/node.bash"
source "$(dirname "$0")/lib/faults.bash"

start_node B -m "$MODEL" --slots 2 --threads 2
start_node C -m "$MODEL" --slots 1 --threads 1
start_node A -m "$MODEL" --slots 1 --threads 1 --peer "${node_url[B]}" --peer "${node_url[C]}"

job_request "$tmp/req.json" cancel-1 40 3000
run_job_bg A "$tmp/req.json" "$tmp/res.json" 1 1
for w in A B C; do
	[ "$(node_busy "${node_url[$w]}")" -ge 1 ] || fail "node $w runs nothing before the cancel"
done
envelope CANCEL_JOB "$(jq -cn --arg j "$job" '{job_id: $j}')" >"$tmp/cancel.json"
t0=$(now_s)
code=$(post "${node_url[A]}/v1/command" "$tmp/cancel.json" "$tmp/cancelled.json")
[ "$code" = 200 ] || fail "CANCEL_JOB: HTTP $code $(cat "$tmp/cancelled.json")"
for w in A B C; do
	for i in $(seq 50); do
		[ "$(node_busy "${node_url[$w]}")" = 0 ] && break
		sleep 0.1
	done
	busy=$(node_busy "${node_url[$w]}")
	echo "node $w idle after $(elapsed "$t0")s (busy $busy)"
	[ "$busy" = 0 ] || fail "node $w still runs $busy fragment(s) 5 s after CANCEL_JOB"
done
wait "$cpid"
code=$(cat "$tmp/res.json.code")
[ "$code" = 503 ] || fail "cancelled job answered HTTP $code, want 503"
jq -e '.status == "error" and .error.code == "CANCELLED"' "$tmp/res.json" >/dev/null ||
	fail "cancelled job's answer: $(head -c 300 "$tmp/res.json")"
[ "$(job_field "${node_url[A]}" "$job" state)" = cancelled ] || fail "job state is not cancelled"
done_at_cancel=$(job_field "${node_url[A]}" "$job" fragments_done)
[ "$done_at_cancel" -lt 40 ] || fail "the job finished before it was cancelled"

job_request "$tmp/req2.json" cancel-2 6 50
code=$(post "${node_url[A]}/v1/command" "$tmp/req2.json" "$tmp/res2.json")
[ "$code" = 200 ] || fail "a job after the cancel: HTTP $code $(head -c 300 "$tmp/res2.json")"
stop_node A
stop_node B
stop_node C
finish
