#!/usr/bin/env bash
# A node killed with SIGKILL vanishes from the others' FIND_NODES within 30 s; restarted with
# the same --data-dir it comes back with the same peer id.
source "$(dirname "$0")/lib/discovery.bash"

dht0=$(free_port udp)
start_node a "$(free_port)" "$dht0" -m "stories=$MODEL"
boot=(--bootstrap "127.0.0.1:$dht0")
start_node b "$(free_port)" 0 "${boot[@]}" -m "stories=$MODEL"
pv=$(free_port)
start_node v "$pv" 0 "${boot[@]}" -m "stories=$MODEL" --data-dir "$tmp/victim"
for n in a b v; do wait_up "${node_url[$n]}" || fail "$n did not come up"; done
vid=$(peer_id_of "${node_url[v]}")
has_v() { found_ids "$1" '{}' | grep -q "$vid"; }
for n in a b; do wait_for 10 has_v "${node_url[$n]}" || fail "$n never saw the victim"; done

kill -9 "${node_pid[v]}"
t0=$SECONDS
gone() { ! has_v "${node_url[a]}" && ! has_v "${node_url[b]}"; }
wait_for 30 gone || fail "victim still listed $((SECONDS - t0)) s after SIGKILL"
echo "victim gone after $((SECONDS - t0)) s"

start_node v2 "$pv" 0 "${boot[@]}" -m "stories=$MODEL" --data-dir "$tmp/victim"
wait_up "${node_url[v2]}" || fail "restarted node did not come up"
[ "$(peer_id_of "${node_url[v2]}")" = "$vid" ] || fail "restarted node has a new peer id"
for n in a b; do wait_for 10 has_v "${node_url[$n]}" || fail "$n does not see the restarted node"; done
finish
