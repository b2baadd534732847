#!/usr/bin/env bash
# FIND_NODES filters return exactly the right nodes; a job for a model only two nodes serve
# goes only to those two.
source "$(dirname "$0")/lib/discovery.bash"
# The test asserts which nodes ran fragments: no straggler backups (they may move one).
export HERD_SCHED_STRAGGLER_DONE_FRAC=1

dht0=$(free_port udp)
start_node a "$(free_port)" "$dht0" -m "stories=$MODEL" --cores 1 --memory-mb 1000
boot=(--bootstrap "127.0.0.1:$dht0")
start_node b "$(free_port)" 0 "${boot[@]}" -m "stories=$MODEL" --cores 1 --memory-mb 4000
start_node c "$(free_port)" 0 "${boot[@]}" -m "stories=$MODEL" -m "other=$MODEL_Q8" --cores 2 --memory-mb 1000
start_node d "$(free_port)" 0 "${boot[@]}" -m "other=$MODEL_Q8" --cores 2 --memory-mb 4000
declare -A id
for n in a b c d; do
	wait_up "${node_url[$n]}" || fail "$n did not come up"
	id[$n]=$(peer_id_of "${node_url[$n]}")
done
ids() { for n in "$@"; do echo "${id[$n]}"; done | sort | paste -sd' '; }
if (($(nproc) < 2)); then echo "SKIP: needs 2 cores to advertise --cores 2"; exit 77; fi

url=${node_url[a]}
wait_for 10 sees "$url" '{}' "$(ids a b c d)" || fail "a does not see all four"
check() { # params, expected nodes...
	local p=$1
	shift
	local got want
	got=$(found_ids "$url" "$p")
	want=$(ids "$@")
	[ "$got" = "$want" ] || fail "FIND_NODES $p gave [$got], want [$want]"
}
check '{"min_cpu_cores":2}' c d
check '{"min_memory_mb":2000}' b d
check '{"min_cpu_cores":2,"min_memory_mb":2000}' d
check '{"model_name":"other"}' c d
check '{"model_name":"stories"}' a b c
check '{"model_name":"stories","min_memory_mb":2000}' b
check '{"requires_gpu":true}'
check '{"max_load":0}' a b c d
check '{"model_name":"nope"}'
# bad params are refused with the field named
msg=$(curl -s -X POST "$url/v1/command" -d '{"command":"FIND_NODES","request_id":"x","from":"t","to":"","timestamp":1,"params":{"min_cpu_cores":-1}}' | jq -r '.error.message')
case $msg in *params.min_cpu_cores*) ;; *) fail "bad params: got '$msg'" ;; esac

# a job for "other" runs only on c and d
out=$(submit_job "$url" other 6) || fail "job for other failed"
ran=$(job_node_ids <<<"$out")
[ "$ran" = "$(ids c d)" ] || fail "other ran on [$ran], want [$(ids c d)]"
finish
