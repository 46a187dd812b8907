#!/usr/bin/env bash
# Builds tlsplice on Debian 13 (OpenSSL 3.5, gcc 14, newer meson and inih) in a chroot and runs
# its unit and integration tests there, with werror as on Debian 12.
#
#   scripts/deb13-test.sh [--keep DIR] [--build-only]
#
# --keep DIR leaves the Debian 13 build folder in DIR/build and links DIR/sysroot to the
# chroot, whose libraries the programs need, so that scripts/vmtest.sh can run them:
#   scripts/vmtest.sh --sysroot DIR/sysroot --build-dir DIR/build DIR/build/tests/vm/...
# --build-only builds (and keeps) without running the tests.
#
# The chroot is made once by debootstrap (suite trixie, the mirror this machine's apt sources
# name) with the build dependencies, and kept under TLSPLICE_TEST_CACHE (default
# /var/lib/tlsplice-test); every run works in an overlay over it, so nothing of a run stays.
# stdout: TAP lines "ok - deb13:..." / "not ok - deb13:..."; details on stderr.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/debian.sh
. "$ROOT/scripts/lib/debian.sh"
CACHE=${TLSPLICE_TEST_CACHE:-/var/lib/tlsplice-test}
BASE=$CACHE/chroot-13
DEPS="build-essential meson ninja-build pkgconf libssl-dev libevent-dev libinih-dev
libcriterion-dev openssl ca-certificates"
work= root=
keep= build_only=0

log() { echo "deb13-test: $*" >&2; }
skip() { echo "ok - deb13 # SKIP $*"; exit 0; }

usage() { echo "usage: $0 [--keep DIR] [--build-only]" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--keep) [ $# -ge 2 ] || usage; keep=$2; shift 2 ;;
	--build-only) build_only=1; shift ;;
	*) usage ;;
	esac
done

cleanup() {
	local m
	if [ -n "$root" ]; then
		for m in tmp dev/pts dev proc; do
			mountpoint -q "$root/$m" && umount -l "$root/$m"
		done
		mountpoint -q "$root" && umount -l "$root"
	fi
	[ -n "$work" ] && rm -rf "$work"
}
trap cleanup EXIT

# Debian 13 with the build dependencies, made once.
make_base() {
	[ -f "$BASE/.ready" ] && return 0
	command -v debootstrap >/dev/null || {
		apt-get update -qq >&2 && apt-get install -y -qq debootstrap >&2; } ||
		skip "cannot install debootstrap"
	rm -rf "$BASE"
	mkdir -p "$CACHE"
	log "debootstrap trixie into $BASE"
	debootstrap --variant=minbase trixie "$BASE" "$(apt_mirror)" >"$CACHE/chroot-13.log" 2>&1 ||
		{ tail -5 "$CACHE/chroot-13.log" >&2; return 1; }
	cp /etc/resolv.conf "$BASE/etc/resolv.conf" 2>/dev/null
	mount -t proc proc "$BASE/proc"
	chroot "$BASE" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
		sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $(echo $DEPS)" \
		>>"$CACHE/chroot-13.log" 2>&1
	local rc=$?
	umount "$BASE/proc"
	[ $rc -eq 0 ] || { tail -5 "$CACHE/chroot-13.log" >&2; return 1; }
	rm -rf "$BASE"/var/cache/apt/archives/*.deb
	touch "$BASE/.ready"
}

# A writable overlay over the base, with /proc, /dev and /tmp, and the sources in /src.
enter() {
	work=$(mktemp -d /var/tmp/tlsplice-deb13.XXXXXX)
	mkdir -p "$work/upper" "$work/work" "$work/root"
	root=$work/root
	mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$work/upper,workdir=$work/work" "$root" ||
		return 1
	mount -t proc proc "$root/proc"
	mount --bind /dev "$root/dev"
	mount --bind /dev/pts "$root/dev/pts"
	mount -t tmpfs tmpfs "$root/tmp"
	mkdir -p "$root/src"
	(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 tar -c) | tar -C "$root/src" -x
}

# The build folder to $keep/build, and $keep/sysroot -> the chroot with the libraries.
keep_build() {
	mkdir -p "$keep" || return 1
	rm -rf "$keep/build" "$keep/sysroot"
	cp -a "$root/build" "$keep/build" || return 1
	ln -s "$BASE" "$keep/sysroot" || return 1
	log "build kept in $keep/build, libraries in $keep/sysroot -> $BASE"
}

in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

main() {
	# nothing stale is left for the VM when this run cannot build
	[ -z "$keep" ] || rm -rf "$keep/build" "$keep/sysroot"
	[ "$(id -u)" = 0 ] || skip "needs root for the chroot"
	make_base || { echo "not ok - deb13:chroot (debootstrap or apt failed)"; exit 1; }
	enter || { echo "not ok - deb13:overlay"; exit 1; }
	local versions
	versions=$(in_root sh -c 'gcc --version | head -1; openssl version; meson --version')
	log "$(echo $versions)"
	if ! in_root sh -c 'cd /src && meson setup /build >/build-setup.log 2>&1 && ninja -C /build' \
		>"$work/build.log" 2>&1; then
		tail -40 "$work/build.log" >&2
		echo "not ok - deb13:build (warnings are errors)"
		exit 1
	fi
	echo "ok - deb13:build ($(echo "$versions" | sed -n 2p | cut -d' ' -f1-2), werror)"
	[ -z "$keep" ] || keep_build || { echo "not ok - deb13:keep $keep"; exit 1; }
	[ $build_only = 0 ] || exit 0
	local exe name failed=0
	for exe in "$root"/build/tests/unit/test_* "$root"/build/tests/integration/test_*; do
		[ -f "$exe" ] && [ -x "$exe" ] || continue
		name=$(basename "$exe")
		in_root timeout 600 "/build/tests/${exe#"$root"/build/tests/}" --tap=/tmp/$name.tap -j2 \
			>"$work/$name.out" 2>&1 || failed=1
		if [ -s "$root/tmp/$name.tap" ]; then
			sed -nE 's/^(not )?ok - /&deb13:/p' "$root/tmp/$name.tap"
			grep -A8 '^not ok' "$root/tmp/$name.tap" >&2
		else
			echo "not ok - deb13:$name (no report)"; tail -20 "$work/$name.out" >&2
		fi
	done
	exit $failed
}

main
