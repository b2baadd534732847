#!/usr/bin/env bash
# Streaming: a "stream": true job answers Server-Sent Events — a job event, token events
# (stream_tokens), one fragment event per fragment with its index, and a final result event
# whose output equals the same job's non-streamed answer; GET /v1/jobs/{id} gives the state
# and /v1/jobs/{id}/events replays a finished job. Two nodes, so fragments also stream in
# from a peer.
source "$(dirname "$0")/lib/node.bash"
# The test asserts which nodes ran fragments: no straggler backups (they may move one).
export HERD_SCHED_STRAGGLER_DONE_FRAC=1

start_node B -m "$MODEL" --threads 1
start_node A -m "$MODEL" --threads 1 --peer "${node_url[B]}"
A=${node_url[A]}

text='Once upon a time, there was a big red ball. It liked to roll down the hill.

One day the ball rolled into the pond. A frog saw it and laughed.

The frog pushed the ball back to the shore, and they became friends.'
params=$(jq -cn --arg t "$text" '{model_name: "stories260K", input_data: $t, max_tokens: 8,
	temperature: 0, num_fragments: 3, stream: true, stream_tokens: true}')
envelope EXECUTE_TASK "$params" stream-1 >"$tmp/req.json"
curl -sN -H 'Content-Type: application/json' --data-binary "@$tmp/req.json" "$A/v1/command" >"$tmp/sse.txt" ||
	fail "streamed job: curl failed"
# one JSON object per event: {"event": ..., "data": ...}
awk '/^event: /{ev=substr($0, 8)} /^data: /{d=substr($0, 7); printf "{\"event\":\"%s\",\"data\":%s}\n", ev, d; ev="message"}' \
	"$tmp/sse.txt" >"$tmp/events.jsonl"
jq -se 'map(.event) | .[0] == "job" and .[-1] == "result"' "$tmp/events.jsonl" >/dev/null ||
	fail "events do not start with job and end with result: $(jq -sc 'map(.event)' "$tmp/events.jsonl")"
jq -se '[.[] | select(.event == "fragment") | .data.fragment_index] | sort == [0,1,2]' "$tmp/events.jsonl" >/dev/null ||
	fail "want one fragment event per index: $(jq -sc '[.[] | select(.event == "fragment") | .data.fragment_index]' "$tmp/events.jsonl")"
jq -se '[.[] | select(.event == "token")] | length > 0' "$tmp/events.jsonl" >/dev/null || fail "no token events"
# the tokens of each fragment add up to its output
for i in 0 1 2; do
	toks=$(jq -sj "[.[] | select(.event == \"token\" and .data.fragment_index == $i) | .data.text] | join(\"\")" "$tmp/events.jsonl")
	out=$(jq -sj ".[] | select(.event == \"fragment\" and .data.fragment_index == $i) | .data.output" "$tmp/events.jsonl")
	[ "$toks" = "$out" ] || fail "fragment $i: tokens '$toks' != output '$out'"
done
jq -se --arg a "${node_id[A]}" --arg b "${node_id[B]}" \
	'[.[] | select(.event == "fragment") | .data.node_id] | unique | sort == ([$a, $b] | sort)' \
	"$tmp/events.jsonl" >/dev/null || fail "fragments did not run on both nodes"
jq -s '.[] | select(.event == "result") | .data' "$tmp/events.jsonl" >"$tmp/final.json"
jq -e '.status == "success" and .result.fragments_processed == 3' "$tmp/final.json" >/dev/null ||
	fail "final event: $(head -c 300 "$tmp/final.json")"
job_id=$(jq -r .result.job_id "$tmp/final.json")

# The same job without streaming gives the same output.
jq -c '.params.stream = false | .params.stream_tokens = false | .request_id = "plain-1"' "$tmp/req.json" >"$tmp/plain.json"
code=$(post "$A/v1/command" "$tmp/plain.json" "$tmp/plain_res.json")
[ "$code" = 200 ] || fail "plain job: HTTP $code"
[ "$(jq -r .result.output "$tmp/plain_res.json")" = "$(jq -r .result.output "$tmp/final.json")" ] ||
	fail "streamed and plain outputs differ"

# Job state and replay of a finished job.
code=$(curl -s -o "$tmp/state.json" -w '%{http_code}' "$A/v1/jobs/$job_id")
[ "$code" = 200 ] || fail "GET /v1/jobs/$job_id: HTTP $code"
jq -e '.state == "done" and .fragments_done == 3 and .fragments_total == 3' "$tmp/state.json" >/dev/null ||
	fail "job state: $(cat "$tmp/state.json")"
timeout 10 curl -sN "$A/v1/jobs/$job_id/events" >"$tmp/replay.txt" || fail "replay: curl failed or hung"
[ "$(grep -c '^event: fragment' "$tmp/replay.txt")" = 3 ] || fail "replay: want 3 fragment events"
grep -q '^event: result' "$tmp/replay.txt" || fail "replay: no result event"
code=$(curl -s -o /dev/null -w '%{http_code}' "$A/v1/jobs/job-unknown")
[ "$code" = 404 ] || fail "unknown job: HTTP $code, want 404"

# JOB_STATUS over /v1/command too
envelope JOB_STATUS "{\"job_id\":\"$job_id\"}" >"$tmp/js.json"
code=$(post "$A/v1/command" "$tmp/js.json" "$tmp/js_res.json")
[ "$code" = 200 ] && jq -e '.status == "success" and .result.state == "done"' "$tmp/js_res.json" >/dev/null ||
	fail "JOB_STATUS: HTTP $code $(head -c 300 "$tmp/js_res.json")"

stop_node A
stop_node B
finish
