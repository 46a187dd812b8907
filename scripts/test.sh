#!/usr/bin/env bash
# Builds tlsplice twice (normal, and ASan+UBSan), runs every unit and integration test in
# both, then the kernel-TLS suite inside a VM. Prints "N passed, N failed[, N skipped]" last
# and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
logdir=$top/build/test-logs

scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

build() { # DIR [meson options...]
	local dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		mkdir -p "$dir"
		meson setup "$dir" "$@" >"$dir/setup-output.log" 2>&1 ||
			{ tail -20 "$dir/setup-output.log"; return 1; }
	fi
	ninja -C "$dir" >"$dir/build-output.log" 2>&1 || { tail -40 "$dir/build-output.log"; return 1; }
}

# --long: the long fuzz, soak and scale runs (minutes each) instead of the CI-sized ones
long=0
[ "${1:-}" = --long ] && long=1
fuzz_seconds=20 soak_seconds=60
[ $long = 1 ] && fuzz_seconds=600 soak_seconds=1800

pass=0 fail=0 skip=0
failed_names=()

# Counts the TAP lines in file $1, naming tests with prefix $2.
count_tap() {
	local file=$1 prefix=$2 line
	while IFS= read -r line; do
		case "$line" in
		"ok "*"# SKIP"*) skip=$((skip + 1)); echo "  skip: $prefix${line#ok }" ;;
		"ok "*) pass=$((pass + 1)) ;;
		"not ok "*) fail=$((fail + 1)); failed_names+=("$prefix${line#not ok }") ;;
		esac
	done <"$file"
}

# Runs one Criterion executable with a TAP report; a crash without a report counts as a failure.
run_suite() { # EXE PREFIX
	local exe=$1 prefix=$2 name tap
	name=$(basename "$exe")
	tap=$logdir/$prefix$name.tap
	echo "== $prefix$name (at ${SECONDS}s)"
	timeout 900 "$exe" --tap="$tap" -j2 >"$logdir/$prefix$name.out" 2>&1
	local rc=$?
	if [ ! -s "$tap" ] || ! grep -q '^\(not \)\?ok ' "$tap"; then
		fail=$((fail + 1)); failed_names+=("$prefix$name (exit $rc, no report)")
		tail -20 "$logdir/$prefix$name.out"
		return
	fi
	count_tap "$tap" "$prefix"
	if [ $rc -ne 0 ] && ! grep -q '^not ok ' "$tap"; then
		fail=$((fail + 1)); failed_names+=("$prefix$name (exit $rc)")
	fi
	grep -B2 -A12 '^not ok ' "$tap" | head -60
}

# Runs a script that prints TAP lines on stdout (details on stderr, kept in the log folder);
# a non-zero exit without a failed line counts as one failure.
run_tap() { # NAME COMMAND...
	local name=$1 rc; shift
	echo "== $name (at ${SECONDS}s)"
	timeout 3600 "$@" >"$logdir/$name.tap" 2>"$logdir/$name.err"
	rc=$?
	count_tap "$logdir/$name.tap" ""
	grep '^not ok ' "$logdir/$name.tap" | head -20
	if [ $rc -ne 0 ] && ! grep -q '^not ok ' "$logdir/$name.tap"; then
		fail=$((fail + 1)); failed_names+=("$name (exit $rc)"); tail -20 "$logdir/$name.err"
	fi
}

suites() { # BUILD-DIR PREFIX
	local exe
	for exe in "$1"/tests/unit/test_* "$1"/tests/integration/test_*; do
		[ -x "$exe" ] && [ -f "$exe" ] && run_suite "$exe" "$2"
	done
}

# The code's shape: one dialect (clang-format), no include cycle, no file over 800 lines.
echo "== style"
if fmt_out=$(git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror 2>&1); then
	pass=$((pass + 1))
else
	fail=$((fail + 1)); failed_names+=("clang-format"); echo "$fmt_out" | head -20
fi
if shape_out=$(scripts/check-includes.sh --sizes 2>&1); then
	pass=$((pass + 1))
else
	fail=$((fail + 1)); failed_names+=("check-includes"); echo "$shape_out"
fi

echo "== building (normal and ASan+UBSan)"
if ! build build; then
	echo "0 passed, 1 failed"; exit 1
fi
mkdir -p "$logdir"
asan_ok=1
build build-asan -Db_sanitize=address,undefined -Dbuildtype=debug || asan_ok=0

suites build ""
if [ $asan_ok = 1 ]; then
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
	export LSAN_OPTIONS=suppressions=$top/tests/lsan.supp:print_suppressions=0
	export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
	suites build-asan "asan:"
	unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
else
	fail=$((fail + 1)); failed_names+=("asan build")
fi

if [ $asan_ok = 1 ]; then
	run_tap abuse scripts/abuse.sh --build-dir build-asan $([ $long = 1 ] && echo --long)
	run_tap soak scripts/soak.sh --seconds "$soak_seconds" --build-dir build-asan
fi
run_tap scale scripts/scale.sh --build-dir build $([ $long = 1 ] && echo --long)
run_tap fuzz scripts/fuzz.sh --all "$fuzz_seconds"
run_tap docker scripts/docker-test.sh --build-dir build
run_tap package scripts/package.sh --test
run_tap deb13 scripts/deb13-test.sh --keep build/deb13

if [ -x scripts/vmtest.sh ] && [ -x build/tests/vm/test_ktls ]; then
	ktls_progs=(build/tests/vm/test_ktls)
	for exe in build/tests/vm/test_ktls_proxy build/tests/vm/test_ktls_diff build/tests/vm/test_ktls_rekey; do
		[ -f "$exe" ] && [ -x "$exe" ] && ktls_progs+=("$exe")
	done
	int_progs=()
	for exe in build/tests/integration/test_*; do
		# test_dns binds its own /etc/hosts in a mount namespace: nothing in it needs kTLS
		[ "${exe##*/}" = test_dns ] && continue
		[ -f "$exe" ] && [ -x "$exe" ] && int_progs+=("$exe")
	done
	# the kTLS programs on both kernels (Debian 12's 6.1, which cannot re-key, and the newest
	# 7.x of Debian 13's backports); the integration suites on 7.x, where the VM runs faster
	run_tap vm-6.1 scripts/vmtest.sh --build-dir build --kernel 6.1 "${ktls_progs[@]}"
	run_tap vm-7 scripts/vmtest.sh --build-dir build --kernel 7 --timeout 1500 \
		"${ktls_progs[@]}" "${int_progs[@]}"
	# the Debian 13 build (its OpenSSL 3.5 offloads TLS 1.3 receive itself), its own libraries
	if [ -x build/deb13/build/tests/vm/test_ktls_proxy ]; then
		run_tap vm-deb13 scripts/vmtest.sh --kernel 7 --sysroot build/deb13/sysroot \
			--build-dir build/deb13/build build/deb13/build/tests/vm/test_ktls_proxy
	else
		skip=$((skip + 1)); echo "  skip: vm-deb13: no Debian 13 build (deb13 says why)"
	fi
fi

echo "== done in ${SECONDS}s"
if [ ${#failed_names[@]} -gt 0 ]; then
	echo "== failed:"
	printf '  %s\n' "${failed_names[@]}"
fi
if [ $skip -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ $fail -eq 0 ]
