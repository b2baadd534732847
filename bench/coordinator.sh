#!/usr/bin/env bash
# Coordinator overhead on loopback (a benchmark, not a test).
#
# Usage: bench/coordinator.sh [HERD=./build/herd] [FRAGMENTS=64] [CONNS=256]
#
# 1. Overhead per fragment: coordinator A serves no model and has one peer B with one slot,
#    so B runs the job's fragments one after another and A does all the dispatch, HTTP,
#    validation and aggregation. The job streams a `fragment` event per result with A's
#    elapsed_ms; for fragment k (in completion order) the overhead is
#      elapsed_k - elapsed_{k-1} - processing_time_ms_k
#    i.e. the time between two results that B did not spend inside inference: sending the
#    next fragment, the HTTP round trip, parsing, checking and aggregating. max_tokens 1 keeps
#    inference short. Prints p50/p90/max (target: p50 under 2 ms).
# 2. Concurrent connections: CONNS clients open keep-alive connections to A, each sends a
#    request and keeps its connection open; then all are held at once while a fresh client
#    checks that A still answers. Prints how many were held and answered (target >= 200).
set -eu
HERD=${1:-./build/herd}
N=${2:-64}
CONNS=${3:-256}
SHARED=${HERD_SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
MODEL=$SHARED/models/stories260K.gguf
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

start() { # NAME FLAGS... → url in $tmp/NAME.url
	local name=$1 i
	shift
	"$HERD" node --listen 127.0.0.1:0 "$@" 2>"$tmp/$name.log" &
	pids+=($!)
	for i in $(seq 100); do
		if grep -q 'listening on' "$tmp/$name.log"; then
			grep -o 'http://[0-9.:]*' "$tmp/$name.log" | head -1 >"$tmp/$name.url"
			return
		fi
		sleep 0.1
	done
	echo "node $name did not start" >&2
	exit 1
}
start B -m "$MODEL" --slots 1 --threads 1
start A --peer "$(cat "$tmp/B.url")" --threads 1
A=$(cat "$tmp/A.url")

# A text with N paragraphs: N fragments.
for i in $(seq "$N"); do printf 'Paragraph %d. The cat sat on the mat.\n\n' "$i"; done >"$tmp/text"
jq -cn --rawfile t "$tmp/text" --argjson n "$N" '{command: "EXECUTE_TASK", request_id: "bench",
	from: "bench", timestamp: 1, params: {model_name: "stories260K", input_data: $t,
	num_fragments: $n, max_tokens: 1, temperature: 0, context_overlap: 0, stream: true}}' >"$tmp/req"
curl -sN --data-binary "@$tmp/req" "$A/v1/command" >"$tmp/sse"
grep '^data: ' "$tmp/sse" | sed 's/^data: //' | jq -c 'select(.fragment_index != null and .elapsed_ms != null)
	| [.elapsed_ms, .processing_time_ms]' >"$tmp/frags"
got=$(wc -l <"$tmp/frags")
[ "$got" = "$N" ] || { echo "want $N fragment events, got $got" >&2; exit 1; }
jq -rs 'sort_by(.[0]) | . as $a | [range(1; length) | $a[.][0] - $a[. - 1][0] - $a[.][1]]
	| sort | "coordinator overhead per fragment (\(length) gaps, ms): p50 \(.[(length * 0.5 | floor)] * 1000 | round / 1000)  p90 \(.[(length * 0.9 | floor)] * 1000 | round / 1000)  max \(.[-1] * 1000 | round / 1000)"' "$tmp/frags"
jq -rs 'map(.[1]) | "worker processing per fragment (ms): mean \(add / length * 1000 | round / 1000)"' "$tmp/frags"

# Concurrent connections held by one node.
python3 - "$A" "$CONNS" <<'EOF'
import socket, sys, subprocess
url, n = sys.argv[1], int(sys.argv[2])
host, port = url[len("http://"):].split(":")
socks, answered = [], 0
for i in range(n):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
    socks.append(s)
for s in socks:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    if data.startswith(b"HTTP/1.1 200"):
        answered += 1
# all n are still open now; a fresh client must still get an answer
code = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url + "/health"],
                      capture_output=True, text=True).stdout
print(f"concurrent connections: {n} opened and held, {answered} answered, a fresh client got HTTP {code}")
for s in socks:
    s.close()
sys.exit(0 if answered == n and code == "200" else 1)
EOF
