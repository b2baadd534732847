#!/usr/bin/env bash
# Two swarms on one DHT never see each other.
source "$(dirname "$0")/lib/discovery.bash"

dht0=$(free_port udp)
start_node a1 "$(free_port)" "$dht0" --swarm a -m "stories=$MODEL"
boot=(--bootstrap "127.0.0.1:$dht0")
start_node a2 "$(free_port)" 0 "${boot[@]}" --swarm a -m "stories=$MODEL"
start_node b1 "$(free_port)" 0 "${boot[@]}" --swarm b -m "stories=$MODEL"
start_node b2 "$(free_port)" 0 "${boot[@]}" --swarm b -m "stories=$MODEL"
declare -A id
for n in a1 a2 b1 b2; do
	wait_up "${node_url[$n]}" || fail "$n did not come up"
	id[$n]=$(peer_id_of "${node_url[$n]}")
done
pair() { printf '%s\n' "$1" "$2" | sort | paste -sd' '; }
for n in a1 a2; do
	wait_for 10 sees "${node_url[$n]}" '{}' "$(pair "${id[a1]}" "${id[a2]}")" ||
		fail "$n sees [$(found_ids "${node_url[$n]}" '{}')], want swarm a only"
done
for n in b1 b2; do
	wait_for 10 sees "${node_url[$n]}" '{}' "$(pair "${id[b1]}" "${id[b2]}")" ||
		fail "$n sees [$(found_ids "${node_url[$n]}" '{}')], want swarm b only"
done
sleep 3 # several announce rounds: still apart
[ "$(found_ids "${node_url[a1]}" '{}')" = "$(pair "${id[a1]}" "${id[a2]}")" ] || fail "a1 saw swarm b later"
[ "$(found_ids "${node_url[b1]}" '{}')" = "$(pair "${id[b1]}" "${id[b2]}")" ] || fail "b1 saw swarm a later"
finish
