#!/usr/bin/env bash
# Builds the Debian package (dpkg-buildpackage from debian/), checks it with lintian, and with
# --test installs it into a fresh Debian 12 chroot and runs it there.
#
#   scripts/package.sh [--test]
#
# The .deb lands in build-deb/. The sources are the files git tracks or would track (nothing
# ignored: no build folders). The chroot is made by debootstrap from the mirror this machine's
# apt sources name and kept under TLSPLICE_TEST_CACHE (default /var/lib/tlsplice-test); each
# run installs into a fresh copy of it. stdout: TAP lines "ok - package:NAME" /
# "not ok - package:NAME"; details on stderr. Exit 1 on a failure.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/debian.sh
. "$ROOT/scripts/lib/debian.sh"
OUT=$ROOT/build-deb
CACHE=${TLSPLICE_TEST_CACHE:-/var/lib/tlsplice-test}
TEST=0 failed=0 chroot_dir=

log() { echo "package: $*" >&2; }
ok() { echo "ok - package:$1${2:+ ($2)}"; }
not_ok() { echo "not ok - package:$1${2:+ ($2)}"; failed=1; }
check() { # NAME DETAIL COMMAND...
	local name=$1 detail=$2; shift 2
	if "$@" >&2; then ok "$name" "$detail"; else not_ok "$name" "$detail"; fi
}

case ${1:-} in
--test) TEST=1 ;;
"") ;;
*) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

cleanup() {
	if [ -n "$chroot_dir" ]; then
		local m
		for m in proc dev/pts dev tmp; do
			mountpoint -q "$chroot_dir/$m" && umount -l "$chroot_dir/$m"
		done
		rm -rf "$chroot_dir"
	fi
}
trap cleanup EXIT

ensure_tools() {
	local missing=() p
	for p in dpkg-dev debhelper lintian fakeroot meson ninja-build pkgconf libssl-dev \
		libevent-dev libinih-dev debootstrap; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] || { log "missing ${missing[*]} (run as root to install them)"; return 1; }
	log "installing ${missing[*]}"
	apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >&2
}

build_deb() {
	local version src
	version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
	src=$OUT/tlsplice-$version
	rm -rf "$OUT"
	mkdir -p "$src"
	(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 tar -c) | tar -C "$src" -x
	(cd "$src" && dpkg-buildpackage -us -uc -b) >"$OUT/build.log" 2>&1 ||
		{ tail -30 "$OUT/build.log" >&2; return 1; }
	ls "$OUT"/tlsplice_*.deb >/dev/null
}

# A Debian 12 tree with fresh package lists, made once and kept; a copy is used per run.
chroot_base() {
	local base=$CACHE/chroot-12
	[ -x "$base/usr/bin/apt-get" ] && [ -f "$base/.ready" ] && { echo "$base"; return 0; }
	rm -rf "$base"
	mkdir -p "$CACHE"
	log "debootstrap bookworm into $base"
	debootstrap --variant=minbase bookworm "$base" "$(apt_mirror)" >"$CACHE/chroot.log" 2>&1 ||
		{ tail -5 "$CACHE/chroot.log" >&2; return 1; }
	touch "$base/.ready"
	echo "$base"
}

in_chroot() { chroot "$chroot_dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

test_in_chroot() {
	local base deb
	deb=$(ls "$OUT"/tlsplice_*.deb | head -1)
	base=$(chroot_base) || { not_ok chroot "debootstrap failed"; return; }
	chroot_dir=$(mktemp -d /var/tmp/tlsplice-chroot.XXXXXX)
	cp -a "$base/." "$chroot_dir/"
	mount -t proc proc "$chroot_dir/proc"
	mount --bind /dev "$chroot_dir/dev"
	mount --bind /dev/pts "$chroot_dir/dev/pts"
	mount -t tmpfs tmpfs "$chroot_dir/tmp"
	cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf" 2>/dev/null
	cp "$deb" "$chroot_dir/tmp/"
	if ! { in_chroot apt-get update -qq && in_chroot env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$deb")"; } >&2; then
		not_ok chroot-install; return
	fi
	ok chroot-install "$(basename "$deb") into Debian 12"
	check version "" bash -c "chroot '$chroot_dir' /usr/sbin/tlsplice -V | grep -q '^tlsplice '"
	check system-user "" in_chroot getent passwd tlsplice
	check conffile "" bash -c "chroot '$chroot_dir' dpkg-query -W -f='\${Conffiles}' tlsplice |
		grep -q /etc/tlsplice/tlsplice.ini"
	check man-pages "" test -f "$chroot_dir/usr/share/man/man8/tlsplice.8.gz" \
		-a -f "$chroot_dir/usr/share/man/man5/tlsplice.ini.5.gz"
	check systemd-unit "" bash -c "grep -q '^ExecStart=/usr/sbin/tlsplice' \
		'$chroot_dir/lib/systemd/system/tlsplice.service' '$chroot_dir/usr/lib/systemd/system/tlsplice.service' 2>/dev/null"
	# the installed configuration checks once its certificate is in place, as the file says
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=package.test -keyout "$chroot_dir/etc/tlsplice/tls.key" \
		-out "$chroot_dir/etc/tlsplice/tls.crt" 2>/dev/null
	chmod 0600 "$chroot_dir/etc/tlsplice/tls.key"
	check installed-config-checks "tlsplice -t" bash -c \
		"chroot '$chroot_dir' /usr/sbin/tlsplice -t -c /etc/tlsplice/tlsplice.ini"
}

main() {
	ensure_tools || { not_ok tools; exit 1; }
	if build_deb; then
		ok build "$(basename "$(ls "$OUT"/tlsplice_*.deb)")"
	else
		not_ok build; exit 1
	fi
	local tags
	tags=$(lintian --fail-on error,warning "$OUT"/tlsplice_*.changes 2>&1)
	local rc=$?
	[ -n "$tags" ] && echo "$tags" >&2
	if [ $rc -eq 0 ]; then
		ok lintian "$(echo "$tags" | grep -c '^[EW]:' ) errors or warnings"
	else
		not_ok lintian "$(echo "$tags" | grep -c '^E:') errors, $(echo "$tags" | grep -c '^W:') warnings"
	fi
	[ $TEST = 1 ] && { [ "$(id -u)" = 0 ] || { echo "ok - package:chroot # SKIP needs root"; exit $failed; }; test_in_chroot; }
	exit $failed
}

main
