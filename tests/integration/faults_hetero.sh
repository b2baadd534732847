#!/usr/bin/env bash
# A heterogeneous swarm: a worker with 1 slot and one with 3 slots, the same speed per slot
# (one thread per slot). Work is pulled as slots free up, so the 3-slot worker processes about
# three times as many fragments. Tolerance: the ratio must be within 2..4.5 (the machine has
# few cores, shared by all four slots and by whatever else runs, so per-slot speeds wobble).
source "$(dirname "$0")/lib/node.bash"
source "$(dirname "$0")/lib/faults.bash"

start_node B -m "$MODEL" --slots 1 --threads 1
start_node C -m "$MODEL" --slots 3 --threads 3
start_node A --threads 1 --peer "${node_url[B]}" --peer "${node_url[C]}"

job_request "$tmp/req.json" hetero-1 48 400
code=$(post "${node_url[A]}/v1/command" "$tmp/req.json" "$tmp/res.json")
[ "$code" = 200 ] || fail "job: HTTP $code $(head -c 300 "$tmp/res.json")"
nb=$(jq --arg b "${node_id[B]}" '[.result.fragment_results[] | select(.node_id == $b)] | length' "$tmp/res.json")
nc=$(jq --arg c "${node_id[C]}" '[.result.fragment_results[] | select(.node_id == $c)] | length' "$tmp/res.json")
ratio=$(echo "scale=2; $nc / ($nb + 0.0001)" | bc)
echo "fragments: 1-slot node $nb, 3-slot node $nc, ratio $ratio (want 2..4.5)"
[ $((nb + nc)) = 48 ] || fail "fragments ran elsewhere: $nb + $nc of 48"
[ "$(echo "$ratio >= 2 && $ratio <= 4.5" | bc)" = 1 ] || fail "ratio $ratio outside 2..4.5"
stop_node A
stop_node B
stop_node C
finish
