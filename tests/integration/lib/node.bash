# Shared by tests/integration/node_*.sh (sourced; CMake only runs tests/integration/*.sh).
# Starts real `herd node` processes on 127.0.0.1 (port 0: each binds a free port and prints
# "herd node <id> listening on http://HOST:PORT" to stderr, which is how we learn the URL),
# and kills everything it started on exit, even on failure.
set -u
HERD=${HERD:?path of the herd binary}
HERD_SHARED=${HERD_SHARED:?path of ../shared}
MODEL=$HERD_SHARED/models/stories260K.gguf
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
[ -r "$MODEL" ] || { echo "SKIP: $MODEL missing"; exit 77; }

tmp=$(mktemp -d /tmp/herd-it-node-XXXXXX)
pids=()
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# start_node NAME [herd node flags...]: runs in the background on a free port, log in
# $tmp/NAME.log; sets node_url[NAME], node_id[NAME], node_pid[NAME]. Fails the test (exit 1)
# when the node does not come up within 10 s.
declare -A node_pid node_url node_id
start_node() {
	local name=$1 i line
	shift
	"$HERD" node --listen 127.0.0.1:0 "$@" 2>"$tmp/$name.log" &
	node_pid[$name]=$!
	pids+=($!)
	for i in $(seq 100); do
		line=$(grep -m1 'listening on http://' "$tmp/$name.log" 2>/dev/null)
		if [ -n "$line" ]; then
			node_url[$name]=${line##* }
			node_id[$name]=$(echo "$line" | awk '{print $3}')
			return 0
		fi
		kill -0 "${node_pid[$name]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "FAIL: node $name did not start:"
	cat "$tmp/$name.log"
	exit 1
}

# stop_node NAME: SIGTERM, and the node must exit 0 within 10 s.
stop_node() {
	local pid=${node_pid[$1]} i
	kill -TERM "$pid"
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		fail "node $1 did not stop within 10 s of SIGTERM"
		return
	fi
	wait "$pid"
	local rc=$?
	[ "$rc" = 0 ] || fail "node $1 exited $rc after SIGTERM ($(tail -3 "$tmp/$1.log"))"
}

# envelope COMMAND PARAMS_JSON [REQUEST_ID]: a Command envelope on stdout.
envelope() {
	jq -cn --arg c "$1" --argjson p "$2" --arg r "${3:-it-$RANDOM}" \
		'{command: $c, request_id: $r, from: "it", to: "", timestamp: 1700000000, params: $p}'
}

# post URL FILE OUT: POST FILE as JSON, body to OUT, prints the HTTP status.
post() {
	curl -s -o "$3" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$2" "$1"
}

finish() {
	if [ "$fails" = 0 ]; then
		echo "ok"
		exit 0
	fi
	echo "$fails failure(s)"
	exit 1
}

# start_fake MODE NODE_ID SLOTS: a fake node (lib/fake_node.py MODE) in the background; sets
# fake_url.
start_fake() {
	python3 "$(dirname "${BASH_SOURCE[0]}")/fake_node.py" "$@" >"$tmp/fake-$2.port" &
	pids+=($!)
	local i
	for i in $(seq 50); do [ -s "$tmp/fake-$2.port" ] && break; sleep 0.1; done
	fake_url="http://127.0.0.1:$(cat "$tmp/fake-$2.port")"
}
