# Shared by tests/integration/discovery_*.sh (sourced; not a test itself: CMake only runs
# tests/integration/*.sh). Starts real `herd node` processes on 127.0.0.1 with free ports,
# asks them FIND_NODES over HTTP, and kills everything it started on exit, even on failure.
set -u
HERD=${HERD:?path of the herd binary}
HERD_SHARED=${HERD_SHARED:?path of ../shared}
MODEL=$HERD_SHARED/models/stories260K.gguf
MODEL_Q8=$HERD_SHARED/models/stories260K-Q8_0.gguf
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
[ -r "$MODEL" ] || { echo "SKIP: $MODEL missing"; exit 77; }
# `herd node` must exist in this build and take the discovery flags
if ! "$HERD" node --help 2>&1 | grep -q -- '--bootstrap'; then
	echo "SKIP: this build has no 'herd node' with discovery flags ($("$HERD" node --help 2>&1 | head -1))"
	exit 77
fi

tmp=$(mktemp -d /tmp/herd-it-disco-XXXXXX)
pids=()
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
extra_cleanup=:
NSEXEC=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	$extra_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT

# A TCP or UDP port nobody listens on now.
free_port() {
	python3 -c 'import socket,sys
s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=="udp" else socket.SOCK_STREAM)
s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "${1:-tcp}"
}

# start_node NAME HTTP_PORT DHT_PORT [herd node flags...]: runs in the background, log in
# $tmp/NAME.log, data dir $tmp/NAME (unless a --data-dir is given); pid in node_pid[NAME].
declare -A node_pid node_url
start_node() {
	local name=$1 port=$2 dht=$3
	shift 3
	local dd=(--data-dir "$tmp/$name")
	case " $* " in *" --data-dir "*) dd=() ;; esac
	"$HERD" node --listen "127.0.0.1:$port" --dht-port "$dht" "${dd[@]}" "$@" >"$tmp/$name.log" 2>&1 &
	node_pid[$name]=$!
	node_url[$name]="http://127.0.0.1:$port"
	pids+=($!)
}

# wait_up URL: until GET /health answers (10 s).
wait_up() {
	local i
	for i in $(seq 100); do
		"${NSEXEC[@]}" curl -sf -o /dev/null "$1/health" && return 0
		sleep 0.1
	done
	return 1
}

# find_nodes URL PARAMS_JSON: the FIND_NODES result on stdout.
find_nodes() {
	"${NSEXEC[@]}" curl -sf -X POST "$1/v1/command" -H 'Content-Type: application/json' \
		-d "{\"command\":\"FIND_NODES\",\"request_id\":\"it-find\",\"from\":\"test\",\"to\":\"\",\"timestamp\":$(date +%s),\"params\":$2}" |
		jq -c '.result'
}

# peer ids (sorted, one line) that FIND_NODES PARAMS returns at URL
found_ids() { find_nodes "$1" "$2" | jq -r '[.nodes[].peer_id] | sort | join(" ")'; }

# sees URL FILTER_JSON "ID ID ...": true when FIND_NODES at URL lists exactly those ids
# (a function, so that wait_for asks again each time round)
sees() { test "$(found_ids "$1" "$2")" = "$3"; }

# node_info URL: the node's peer id
peer_id_of() {
	"${NSEXEC[@]}" curl -sf -X POST "$1/v1/command" -H 'Content-Type: application/json' \
		-d "{\"command\":\"NODE_INFO\",\"request_id\":\"it-info\",\"from\":\"test\",\"to\":\"\",\"timestamp\":$(date +%s),\"params\":{}}" |
		jq -r '.result.peer_id'
}

# wait_for SECONDS CMD...: until CMD succeeds.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while ((SECONDS < end)); do
		"$@" && return 0
		sleep 0.25
	done
	"$@"
}

# submit URL MODEL FRAGMENTS: runs a job, the result JSON on stdout.
submit_job() {
	local text='Once upon a time there was a little dog.\n\nThe dog liked to run in the park.\n\nOne day it met a cat.\n\nThey became friends.\n\nThe end of the story came soon.\n\nEveryone was happy.\n\nThe sun went down.\n\nGood night.'
	"${NSEXEC[@]}" curl -sf -m 50 -X POST "$1/v1/command" -H 'Content-Type: application/json' \
		-d "{\"command\":\"EXECUTE_TASK\",\"request_id\":\"it-job\",\"from\":\"test\",\"to\":\"\",\"timestamp\":$(date +%s),\"params\":{\"task_type\":\"llama_inference\",\"model_name\":\"$2\",\"input_data\":\"$text\",\"num_fragments\":$3,\"max_tokens\":4,\"temperature\":0}}"
}

# the set of node_ids that ran the fragments of a job result (stdin)
job_node_ids() { jq -r '.result.fragment_results | map(.node_id) | unique | sort | join(" ")'; }

finish() {
	if ((fails)); then
		for f in "$tmp"/*.log; do
			[ -f "$f" ] && { echo "--- $f (tail)"; tail -15 "$f"; }
		done
		echo "$fails failure(s)"
		exit 1
	fi
	echo "ok"
	exit 0
}
