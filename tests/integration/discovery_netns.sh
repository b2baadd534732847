#!/usr/bin/env bash
# Multi-host: three nodes, each in its own network namespace with its own address
# (10.77.0.1-3/24, veth pairs into a bridge in a fourth "hub" namespace — all made here and
# removed on exit), discover each other through the DHT and run a job together.
# Needs root and `ip netns`; where that is not permitted it says why and exits 77.
source "$(dirname "$0")/lib/discovery.bash"
# The test asserts which nodes ran fragments: no straggler backups (they may move one).
export HERD_SCHED_STRAGGLER_DONE_FRAC=1

pfx="hd$$"
hub="$pfx-hub"
made=()
netns_cleanup() {
	for ns in "${made[@]}"; do ip netns del "$ns" 2>/dev/null; done
}
extra_cleanup=netns_cleanup
if ! command -v ip >/dev/null; then echo "SKIP: no ip command (iproute2)"; exit 77; fi
if ! err=$(ip netns add "$hub" 2>&1); then
	echo "SKIP: cannot create a network namespace here: $err"
	exit 77
fi
made+=("$hub")
ip -n "$hub" link add br0 type bridge || { fail "bridge"; finish; }
ip -n "$hub" link set br0 up
ip -n "$hub" link set lo up
for i in 1 2 3; do
	ns="$pfx-n$i"
	ip netns add "$ns" || { fail "netns add $ns"; finish; }
	made+=("$ns")
	ip -n "$ns" link set lo up
	ip -n "$ns" link add eth0 type veth peer name "v$i" netns "$hub" || { fail "veth $i"; finish; }
	ip -n "$ns" addr add "10.77.0.$i/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$hub" link set "v$i" master br0
	ip -n "$hub" link set "v$i" up
done
if command -v ping >/dev/null; then
	ip netns exec "$pfx-n1" ping -c1 -W2 10.77.0.3 >/dev/null || fail "no link between the namespaces"
fi

declare -A id
for i in 1 2 3; do
	boot=()
	((i > 1)) && boot=(--bootstrap 10.77.0.1:4222)
	ip netns exec "$pfx-n$i" "$HERD" node --listen "10.77.0.$i:8080" --dht-port 4222 \
		"${boot[@]}" --data-dir "$tmp/n$i" -m "stories=$MODEL" >"$tmp/n$i.log" 2>&1 &
	pids+=($!)
done
for i in 1 2 3; do
	NSEXEC=(ip netns exec "$pfx-n$i")
	wait_up "http://10.77.0.$i:8080" || fail "n$i did not come up"
	id[$i]=$(peer_id_of "http://10.77.0.$i:8080")
done
all=$(printf '%s\n' "${id[@]}" | sort | paste -sd' ')
for i in 1 2 3; do
	NSEXEC=(ip netns exec "$pfx-n$i")
	wait_for 15 sees "http://10.77.0.$i:8080" '{}' "$all" ||
		fail "n$i sees [$(found_ids "http://10.77.0.$i:8080" '{}')], want [$all]"
done
NSEXEC=(ip netns exec "$pfx-n3")
addrs=$(find_nodes "http://10.77.0.3:8080" '{}' | jq -r '[.nodes[].address] | sort | join(" ")')
[ "$addrs" = "10.77.0.1:8080 10.77.0.2:8080 10.77.0.3:8080" ] || fail "addresses: $addrs"
out=$(submit_job "http://10.77.0.3:8080" stories 6) || fail "job failed"
ran=$(job_node_ids <<<"$out")
[ "$ran" = "$all" ] || fail "fragments ran on [$ran], want all three [$all]"
finish
