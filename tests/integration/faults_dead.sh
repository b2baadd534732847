#!/usr/bin/env bash
# All workers dead. (1) Both workers SIGKILLed in the middle of a job, on a coordinator that
# serves no model itself: the job fails quickly, its error names each unfinished fragment and
# every attempt's cause, and the answer still carries the results of the fragments that had
# succeeded. (2) A job sent when every worker is already dead fails as quickly, naming all of
# its fragments. "Quickly": the sum of the timeouts is fragments × 4 attempts × the 10 s
# floor (minutes); the bound asserted is 20 s.
source "$(dirname "$0")/lib/node.bash"
source "$(dirname "$0")/lib/faults.bash"

start_node B -m "$MODEL" --slots 1 --threads 1
start_node C -m "$MODEL" --slots 1 --threads 1
start_node A --threads 1 --peer "${node_url[B]}" --peer "${node_url[C]}"

# (1) killed mid-job
job_request "$tmp/req.json" dead-1 12 1500
run_job_bg A "$tmp/req.json" "$tmp/res.json" 1
kill -9 "${node_pid[B]}" "${node_pid[C]}"
t0=$(now_s)
wait "${node_pid[B]}" "${node_pid[C]}" 2>/dev/null
wait "$cpid"
took=$(elapsed "$t0")
code=$(cat "$tmp/res.json.code")
echo "both workers killed: the job failed ${took}s later, HTTP $code"
[ "$code" = 502 ] || fail "job with every worker dead: HTTP $code $(head -c 300 "$tmp/res.json")"
[ "$(echo "$took < 20" | bc)" = 1 ] || fail "failing took ${took}s"
msg=$(jq -r .error.message "$tmp/res.json")
done_idx=$(jq -r '[.result.fragment_results[].fragment_index] | join(" ")' "$tmp/res.json")
ndone=$(jq '.result.fragment_results | length' "$tmp/res.json")
echo "partial results: $ndone fragment(s) ($done_idx)"
[ "$ndone" -ge 2 ] || fail "the answer lacks the results of the fragments that succeeded"
jq -e '.result.fragments_processed == (.result.fragment_results | length) and
	(.result.fragment_results | all(.output | type == "string"))' "$tmp/res.json" >/dev/null ||
	fail "partial result malformed: $(jq -c .result "$tmp/res.json" | head -c 300)"
for i in $(seq 0 11); do
	if [[ " $done_idx " == *" $i "* ]]; then
		echo "$msg" | grep -q "fragment $i failed" && fail "fragment $i succeeded but is named failed"
	else
		echo "$msg" | grep -q "fragment $i failed after" || fail "error does not name fragment $i: $msg"
	fi
done
echo "$msg" | grep -qi "connect" || fail "error does not say why (connection): $msg"
echo "$msg" | grep -q "${node_url[B]}" || fail "error does not name worker B: $msg"
echo "error (first 300 bytes): ${msg:0:300}"

# (2) dead before the job starts
job_request "$tmp/req2.json" dead-2 6 100
t0=$(now_s)
code=$(post "${node_url[A]}/v1/command" "$tmp/req2.json" "$tmp/res2.json")
took=$(elapsed "$t0")
echo "job sent to a dead swarm: failed in ${took}s, HTTP $code"
[ "$code" = 502 ] || fail "dead swarm: HTTP $code $(head -c 300 "$tmp/res2.json")"
[ "$(echo "$took < 20" | bc)" = 1 ] || fail "failing took ${took}s"
msg=$(jq -r .error.message "$tmp/res2.json")
for i in $(seq 0 5); do
	echo "$msg" | grep -q "fragment $i failed after" || fail "error does not name fragment $i: $msg"
done
jq -e '.result.fragment_results == []' "$tmp/res2.json" >/dev/null ||
	fail "dead swarm: fragment_results should be empty"
stop_node A

# The knobs that make these tests' deadlines short are checked when a node starts.
for bad in HERD_SCHED_TIMEOUT_FACTOR=abc HERD_SCHED_MAX_ATTEMPTS=0 HERD_SCHED_STRAGGLER_DONE_FRAC=2; do
	env "$bad" timeout 10 "$HERD" node --listen 127.0.0.1:0 2>"$tmp/bad.log" && fail "$bad: node started"
	grep -q "${bad%%=*}\|straggler_done_frac" "$tmp/bad.log" || fail "$bad: error does not name it: $(cat "$tmp/bad.log")"
done
finish
