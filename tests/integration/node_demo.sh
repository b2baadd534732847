#!/usr/bin/env bash
# herd demo end to end: three node processes, six fragments spread over them, the combined
# output printed, the nodes stopped cleanly (exit 0, no node left running, no log left).
set -u
HERD=${HERD:?path of the herd binary}
HERD_SHARED=${HERD_SHARED:?path of ../shared}
MODEL=$HERD_SHARED/models/stories260K.gguf
[ -r "$MODEL" ] || { echo "SKIP: $MODEL missing"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# The test asserts which nodes ran fragments: no straggler backups (they may move one).
export HERD_SCHED_STRAGGLER_DONE_FRAC=1

timeout 60 "$HERD" demo "$MODEL" >"$tmp/out" 2>"$tmp/err" &
demo=$!
wait $demo
rc=$?
[ "$rc" = 0 ] || fail "herd demo exited $rc: $(tail -5 "$tmp/err")"
[ "$(grep -c '^  fragment [0-5] on node [ABC]:' "$tmp/out")" = 6 ] || fail "want six fragment lines: $(cat "$tmp/out")"
[ "$(grep -o '^  fragment [0-5] on node [ABC]' "$tmp/out" | awk '{print $5}' | sort -u | wc -l)" = 3 ] ||
	fail "fragments did not run on all three nodes"
grep -q '^combined output (.* from 6 fragments' "$tmp/out" || fail "no combined output"
grep -q 'stopped the three nodes' "$tmp/err" || fail "nodes not stopped cleanly: $(tail -3 "$tmp/err")"
pgrep -P $demo >/dev/null 2>&1 && fail "a node outlived the demo"
ls /tmp/herd-demo-$demo-* >/dev/null 2>&1 && fail "node logs left in /tmp"
[ "$fails" = 0 ] && { echo ok; exit 0; }
exit 1
