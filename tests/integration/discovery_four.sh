#!/usr/bin/env bash
# Four nodes that know only a bootstrap address (no --peer) find each other through the DHT
# within 10 s, with the right capabilities, and a job sent to any one runs on all four.
source "$(dirname "$0")/lib/discovery.bash"
# The test asserts which nodes ran fragments: no straggler backups (they may move one).
export HERD_SCHED_STRAGGLER_DONE_FRAC=1

dht0=$(free_port udp)
names=(n0 n1 n2 n3)
for i in 0 1 2 3; do
	boot=()
	((i > 0)) && boot=(--bootstrap "127.0.0.1:$dht0")
	dht=$dht0
	((i > 0)) && dht=0
	start_node "n$i" "$(free_port)" "$dht" "${boot[@]}" -m "stories=$MODEL" --slots 2 --cores 1 --memory-mb $((1000 + i))
done
for n in "${names[@]}"; do wait_up "${node_url[$n]}" || fail "$n did not come up"; done
declare -A id
for n in "${names[@]}"; do id[$n]=$(peer_id_of "${node_url[$n]}"); done
all=$(printf '%s\n' "${id[@]}" | sort | paste -sd' ')

sees_all() { [ "$(found_ids "$1" '{}')" = "$all" ]; }
for n in "${names[@]}"; do
	wait_for 10 sees_all "${node_url[$n]}" || fail "$n sees [$(found_ids "${node_url[$n]}" '{}')], want [$all]"
done

# capabilities as advertised, seen from n0
r=$(find_nodes "${node_url[n0]}" '{}')
for i in 0 1 2 3; do
	e=$(jq -c --arg p "${id[n$i]}" '.nodes[] | select(.peer_id == $p)' <<<"$r")
	jq -e --arg a "127.0.0.1:${node_url[n$i]##*:}" --argjson m $((1000 + i)) \
		'.address == $a and .cpu_cores == 1 and .memory_mb == $m and .slots == 2 and
		 (.models | length == 1) and .models[0].name == "stories"' <<<"$e" >/dev/null ||
		fail "n$i record wrong: $e"
	jq -e --arg s "$(sha256sum "$MODEL" | cut -d' ' -f1)" '.models[0].sha256 == $s' <<<"$e" >/dev/null ||
		fail "n$i sha256 wrong"
done

# a job sent to n2 runs fragments on all four nodes
out=$(submit_job "${node_url[n2]}" stories 8) || fail "job failed"
ran=$(job_node_ids <<<"$out")
[ "$ran" = "$all" ] || fail "fragments ran on [$ran], want all four [$all]"
finish
