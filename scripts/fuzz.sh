#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz, built with clang in their own build folder.
#
#   scripts/fuzz.sh TARGET SECONDS [--update-corpus]
#       Runs fuzz_TARGET for SECONDS from a copy of tests/fuzz/corpus/TARGET. Exits non-zero
#       on a crash, a hang (an input taking over 10 s) or a leak, and prints the path of the
#       input that caused it. The checked-in corpus is only written with --update-corpus,
#       which merges in the new inputs that add coverage.
#   scripts/fuzz.sh --all SECONDS
#       Runs every target for SECONDS each and prints one TAP line per target:
#       "ok N - fuzz:TARGET (E execs, 0 crashes)" or "not ok N - fuzz:TARGET (...)".
#
# FUZZ_BUILD names the build folder (default build-fuzz); it is set up on first use with
# CC=clang meson setup build-fuzz -Dfuzz=true. Needs clang and libFuzzer
# (Debian: clang, libclang-rt-14-dev; scripts/setup.sh installs them).
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
build=${FUZZ_BUILD:-build-fuzz}
corpora=$top/tests/fuzz/corpus

usage() {
	sed -n '2,16s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

fuzz_build() {
	if [ ! -f "$build/build.ninja" ]; then
		local log=${TMPDIR:-/tmp}/tlsplice-fuzz-setup.log
		CC=clang meson setup "$build" -Dfuzz=true >"$log" 2>&1 ||
			{ tail -20 "$log" >&2; return 1; }
	fi
	nice ninja -C "$build" >"$build/fuzz-build.log" 2>&1 ||
		{ tail -40 "$build/fuzz-build.log" >&2; return 1; }
}

# Targets are the fuzz_* executables the build made (one per name in tests/fuzz/meson.build).
targets() {
	local exe
	for exe in "$build"/tests/fuzz/fuzz_*; do
		[ -f "$exe" ] && [ -x "$exe" ] && basename "$exe" | sed 's/^fuzz_//'
	done
}

# run_one TARGET SECONDS UPDATE: sets execs, and crash (the failing input's path, or "").
run_one() {
	local name=$1 secs=$2 update=$3 exe work rc
	exe=$top/$build/tests/fuzz/fuzz_$name
	execs=0 crash=""
	[ -x "$exe" ] || { crash="(no executable $exe)"; return 1; }
	work=$(mktemp -d "${TMPDIR:-/tmp}/tlsplice-fuzz-$name.XXXXXX")
	mkdir "$work/corpus"
	[ -d "$corpora/$name" ] && cp -r "$corpora/$name/." "$work/corpus/"
	# the outer timeout only guards against a fuzzer that stops answering
	timeout $((secs + 120)) nice "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
	execs=${execs:-0}
	crash=$(ls "$work"/crash-* "$work"/timeout-* "$work"/leak-* "$work"/oom-* 2>/dev/null | head -1)
	if [ $rc -ne 0 ] && [ -z "$crash" ]; then
		crash="(exit $rc without an artifact; log: $work/log)"
	fi
	if [ -n "$crash" ]; then
		echo "fuzz:$name: failed after $execs execs; input: $crash; log: $work/log" >&2
		grep -m1 -A12 'ERROR\|runtime error\|deadly signal' "$work/log" >&2
		return 1
	fi
	if [ "$update" = 1 ]; then
		mkdir -p "$corpora/$name"
		"$exe" -merge=1 "$corpora/$name" "$work/corpus" >"$work/merge.log" 2>&1 ||
			{ echo "fuzz:$name: corpus merge failed: $work/merge.log" >&2; return 1; }
	fi
	rm -rf "$work"
	return 0
}

[ $# -ge 2 ] || usage
fuzz_build || exit 1
if [ "$1" = --all ]; then
	secs=$2
	[[ "$secs" =~ ^[0-9]+$ ]] || usage
	mapfile -t all < <(targets)
	echo "1..${#all[@]}"
	n=0 bad=0
	for t in "${all[@]}"; do
		n=$((n + 1))
		if run_one "$t" "$secs" 0; then
			echo "ok $n - fuzz:$t ($execs execs, 0 crashes)"
		else
			echo "not ok $n - fuzz:$t ($execs execs, crash: $crash)"
			bad=$((bad + 1))
		fi
	done
	[ $bad -eq 0 ]
	exit
fi
name=$1 secs=$2 update=0
[ "${3:-}" = --update-corpus ] && update=1
[[ "$secs" =~ ^[0-9]+$ ]] || usage
if [ ! -x "$build/tests/fuzz/fuzz_$name" ]; then
	echo "fuzz: no target '$name' (targets: $(targets | tr '\n' ' '))" >&2
	exit 2
fi
if run_one "$name" "$secs" "$update"; then
	echo "fuzz:$name: $execs execs in ${secs}s, 0 crashes"
	exit 0
fi
echo "fuzz:$name: crash input: $crash"
exit 1
