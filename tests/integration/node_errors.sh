#!/usr/bin/env bash
# Bad requests to a real node get status "error" with a precise message and the right HTTP
# code, and the node keeps serving; a peer that is down makes a job fail naming that peer
# when nothing else could run it, and is skipped when another node can.
source "$(dirname "$0")/lib/node.bash"

start_node A -m "$MODEL" --slots 2 --threads 1
A=${node_url[A]}

# expect NAME HTTP_CODE MESSAGE_REGEX FILE [URL]
expect() {
	local name=$1 want=$2 re=$3 file=$4 url=${5:-$A/v1/command} code
	code=$(post "$url" "$file" "$tmp/out.json")
	[ "$code" = "$want" ] || { fail "$name: HTTP $code, want $want ($(head -c 300 "$tmp/out.json"))"; return; }
	jq -e '.status == "error" and (.error.code | type == "string")' "$tmp/out.json" >/dev/null ||
		{ fail "$name: not an error envelope: $(head -c 300 "$tmp/out.json")"; return; }
	jq -r .error.message "$tmp/out.json" | grep -Eq "$re" ||
		fail "$name: message '$(jq -r .error.message "$tmp/out.json")' does not match /$re/"
}

printf '{"command": "PING", "request_id": ' >"$tmp/malformed.json"
expect "malformed JSON" 400 'line 1' "$tmp/malformed.json"

envelope FLY '{}' >"$tmp/unknown.json"
expect "unknown command" 400 'command' "$tmp/unknown.json"

envelope EXECUTE_TASK '{"task_type":"llama_inference","model_name":"no-such-model","input_data":"hi","max_tokens":4}' >"$tmp/nomodel.json"
expect "unknown model" 404 'no-such-model' "$tmp/nomodel.json"

envelope EXECUTE_TASK '{"task_type":"llama_inference","model_name":"stories260K","input_data":"hi","max_tokens":-3}' >"$tmp/badmax.json"
expect "bad max_tokens" 400 'max_tokens' "$tmp/badmax.json"

envelope EXECUTE_TASK '{"task_type":"llama_inference","model_name":"stories260K","input_data":"hi","temperature":"hot"}' >"$tmp/badtemp.json"
expect "bad temperature" 400 'temperature' "$tmp/badtemp.json"

envelope EXECUTE_TASK '{"task_type":"llama_inference","model_name":"stories260K","input_data":"hi","num_fragments":0}' >"$tmp/badnf.json"
expect "bad num_fragments" 400 'num_fragments' "$tmp/badnf.json"

envelope EXECUTE_TASK '{"task_type":"bake_bread","model_name":"stories260K","input_data":"hi"}' >"$tmp/badtask.json"
expect "unknown task_type" 400 'task_type' "$tmp/badtask.json"

# a body over the limit (HERD_MAX_REQUEST_BYTES in src/base/limits.h): 413, named
limit_mib=$(sed -n 's/^#define HERD_MAX_REQUEST_BYTES (\([0-9]*\)u << 20).*/\1/p' "${HERD_SRC:-.}/src/base/limits.h")
[ -n "$limit_mib" ] || limit_mib=80
truncate -s $(((limit_mib << 20) + 1)) "$tmp/big.json" # sparse: no disk, no time
code=$(post "$A/v1/command" "$tmp/big.json" "$tmp/out.json")
[ "$code" = 413 ] || fail "oversized body: HTTP $code, want 413 ($(head -c 200 "$tmp/out.json"))"
jq -e '.status == "error"' "$tmp/out.json" >/dev/null || fail "oversized body: not an error envelope"

# unknown job
envelope JOB_STATUS '{"job_id":"job-nope"}' >"$tmp/nojob.json"
expect "unknown job" 404 'job-nope' "$tmp/nojob.json"

# OpenAI endpoint: bad parameter
echo '{"model":"stories260K","prompt":"hi","max_tokens":"many"}' >"$tmp/oai.json"
code=$(post "$A/v1/completions" "$tmp/oai.json" "$tmp/out.json")
[ "$code" = 400 ] || fail "completions with a bad max_tokens: HTTP $code"
jq -r '.error.message' "$tmp/out.json" | grep -q max_tokens || fail "completions error does not name max_tokens: $(cat "$tmp/out.json")"

# the node still serves
envelope PING '{}' >"$tmp/ping.json"
code=$(post "$A/v1/command" "$tmp/ping.json" "$tmp/out.json")
[ "$code" = 200 ] && jq -e '.status == "success"' "$tmp/out.json" >/dev/null || fail "PING after bad requests: HTTP $code"
envelope EXECUTE_TASK '{"model_name":"stories260K","input_data":"Once upon a time","max_tokens":4,"temperature":0}' >"$tmp/good.json"
code=$(post "$A/v1/command" "$tmp/good.json" "$tmp/out.json")
[ "$code" = 200 ] && jq -e '.status == "success" and (.result.output | length > 0)' "$tmp/out.json" >/dev/null ||
	fail "a good job after bad requests: HTTP $code $(head -c 200 "$tmp/out.json")"

# A peer that is down: a port nobody listens on (bind, read, close).
dead_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dead="http://127.0.0.1:$dead_port"
# D serves no model itself, so only the dead peer could run the job: it fails naming the peer.
start_node D --peer "$dead" --threads 1
envelope EXECUTE_TASK '{"model_name":"stories260K","input_data":"Once upon a time","max_tokens":4,"temperature":0}' >"$tmp/dead.json"
code=$(post "${node_url[D]}/v1/command" "$tmp/dead.json" "$tmp/out.json")
jq -e '.status == "error"' "$tmp/out.json" >/dev/null || fail "job with only a dead peer did not fail: $(head -c 300 "$tmp/out.json")"
jq -r .error.message "$tmp/out.json" | grep -q "127.0.0.1:$dead_port" ||
	fail "error does not name the dead peer: $(jq -r .error.message "$tmp/out.json")"
[ "$code" -ge 500 ] || fail "dead peer: HTTP $code, want 5xx"
# E has the model and the same dead peer: every fragment runs on E itself.
start_node E -m "$MODEL" --peer "$dead" --threads 1
envelope EXECUTE_TASK '{"model_name":"stories260K","input_data":"Once upon a time.\n\nThe end of the story.","num_fragments":2,"max_tokens":4,"temperature":0}' >"$tmp/dead2.json"
code=$(post "${node_url[E]}/v1/command" "$tmp/dead2.json" "$tmp/out.json")
[ "$code" = 200 ] && jq -e --arg id "${node_id[E]}" '.status == "success" and
	([.result.fragment_results[].node_id] | all(. == $id))' "$tmp/out.json" >/dev/null ||
	fail "a dead peer next to a live node: HTTP $code $(head -c 300 "$tmp/out.json")"

stop_node A
stop_node D
stop_node E
finish
