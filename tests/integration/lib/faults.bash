# Shared by tests/integration/faults_*.sh (sourced after node.bash): long greedy jobs whose
# output must not depend on which node ran which fragment, and ways to watch a running job.

# story N: N short paragraphs, each its own fragment when num_fragments = N.
story() {
	local i names=(Lily Tom Sue Max Anna Ben Mia Sam)
	for i in $(seq "$1"); do
		printf 'Once upon a time %s found a red ball number %d in the park. ' "${names[i % 8]}" "$i"
		printf 'She wanted to share it with her friend.\n\n'
	done
}

# job_request FILE REQUEST_ID FRAGMENTS MAX_TOKENS: an EXECUTE_TASK of story FRAGMENTS.
job_request() {
	local params
	params=$(jq -cn --arg t "$(story "$3")" --argjson n "$3" --argjson m "$4" \
		'{model_name: "stories260K", input_data: $t, num_fragments: $n, max_tokens: $m,
		  temperature: 0}')
	envelope EXECUTE_TASK "$params" "$2" >"$1"
}

# job_id_of NAME NTH: the id of the NTH job (1, 2, ...) the coordinator NAME logged (waits up
# to 10 s for the log line).
job_id_of() {
	local i id
	for i in $(seq 100); do
		id=$(grep -o 'job job-[0-9a-f]*: [0-9]* fragment(s)' "$tmp/$1.log" | sed -n "$2p" | awk '{print $2}')
		id=${id%:}
		[ -n "$id" ] && { echo "$id"; return 0; }
		sleep 0.1
	done
	return 1
}

# job_field URL JOB_ID FIELD: a field of GET /v1/jobs/{id} (empty when unknown).
job_field() {
	curl -s "$1/v1/jobs/$2" | jq -r ".$3 // empty"
}

# wait_done URL JOB_ID K SECONDS: waits until at least K fragments are done.
wait_done() {
	local i d
	for i in $(seq $(($4 * 10))); do
		d=$(job_field "$1" "$2" fragments_done)
		[ -n "$d" ] && [ "$d" -ge "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

# node_busy URL: running + queued fragments of a node's worker (NODE_INFO).
node_busy() {
	envelope NODE_INFO '{}' >"$tmp/ni.json"
	curl -s -H 'Content-Type: application/json' --data-binary "@$tmp/ni.json" "$1/v1/command" |
		jq -r '.result.load.running + .result.load.queued'
}

# now_s: seconds since the epoch, with fractions.
now_s() { date +%s.%N; }
elapsed() { echo "$(now_s) - $1" | bc; }

# run_job_bg NAME REQ OUT NTH [K]: posts REQ to node NAME in the background (the HTTP status
# goes to OUT.code, $cpid is the curl), sets $job to the id of that job (NAME's NTH) and
# waits until K (default 2) of its fragments are done.
run_job_bg() {
	post "${node_url[$1]}/v1/command" "$2" "$3" >"$3.code" &
	cpid=$!
	job=$(job_id_of "$1" "$4") || fail "no job id in $1's log"
	wait_done "${node_url[$1]}" "$job" "${5:-2}" 30 ||
		fail "job $job: ${5:-2} fragment(s) not done within 30 s"
}
