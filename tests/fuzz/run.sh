#!/usr/bin/env bash
# tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...] — runs each fuzz target (default: all that
# were built) for SECONDS from its seed corpus: the checked-in seeds and crash regressions in
# tests/fuzz/corpus/<name>/ plus the generated ones (fuzz_corpus_gen). New inputs go to
# BUILD_DIR/fuzz-corpus/<name>/ (kept between runs), crashes to BUILD_DIR/fuzz-crashes/.
# Exits 1 when any target crashed, leaked, timed out or ran out of memory.
set -uo pipefail

build=${1:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
src=$(cd "$(dirname "$0")" && pwd)

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for exe in "$build"/fuzz_*; do
		name=${exe##*/fuzz_}
		[ "$name" = corpus_gen ] || targets+=("$name")
	done
fi

gen="$build/fuzz-seeds"
rm -rf "$gen"
"$build/fuzz_corpus_gen" "$gen" || exit 1
mkdir -p "$build/fuzz-crashes"

failed=()
for name in "${targets[@]}"; do
	work="$build/fuzz-corpus/$name"
	mkdir -p "$work"
	seeds=("$src/corpus/$name")
	[ -d "$gen/$name" ] && seeds+=("$gen/$name")
	max_len=4096
	[ "$name" = gguf ] && max_len=16384
	dict=()
	case $name in job | command | result | capability | find_nodes) dict=(-dict="$src/json.dict") ;; esac
	echo "fuzz: $name for ${seconds}s" >&2
	log="$build/fuzz-crashes/$name.log"
	if ! "$build/fuzz_$name" -max_total_time="$seconds" -max_len=$max_len -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
		-artifact_prefix="$build/fuzz-crashes/$name-" "$work" "${seeds[@]}" >"$log" 2>&1; then
		echo "fuzz: $name FAILED; log $log" >&2
		grep -E "ERROR|check failed|assertion failed|SUMMARY|Test unit written" "$log" | head -5 >&2
		failed+=("$name")
	else
		grep -E "^stat::number_of_executed_units" "$log" | sed "s/^/fuzz: $name /" >&2
	fi
done

if [ ${#failed[@]} -ne 0 ]; then
	echo "fuzz: crashes in: ${failed[*]} (inputs in $build/fuzz-crashes/)" >&2
	exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash" >&2
