# shellcheck shell=bash
# Sourced by scripts/bench.sh (its options and globals are set there).
# The Debian packages of the peers, and the proxy and bench programs built from this tree.

# ---------------------------------------------------------------- install
DEB_TOOLS=(haproxy nginx libnginx-mod-stream hitch stunnel4 gnuplot-nox procps util-linux openssl)
DEB_BUILD=(gcc pkg-config meson ninja-build libssl-dev libevent-dev libinih-dev libcriterion-dev)
DAEMONS=(haproxy nginx hitch stunnel4)

missing_pkgs() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
	done
}

# Stops a distro-started daemon (we run our own instances).
stop_daemons() {
	local d
	for d in "${DAEMONS[@]}"; do
		if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
			systemctl disable --now "$d" >/dev/null 2>&1 || true
		elif [ -x "/etc/init.d/$d" ]; then
			"/etc/init.d/$d" stop >/dev/null 2>&1 || true
		fi
	done
}

install_deps() {
	local miss
	miss=$(missing_pkgs "${DEB_TOOLS[@]}" "${DEB_BUILD[@]}" | tr '\n' ' ')
	[ "$SYSCALLS" = 1 ] && miss+=$(missing_pkgs strace)
	if [ -z "${miss// }" ]; then
		log "all packages present"
		return 0
	fi
	[ "$(id -u)" = 0 ] || die "missing packages ($miss) and not root"
	log "installing: $miss"
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		POLICY_CREATED=1
	fi
	timeout 600 apt-get update -qq || log "apt-get update failed; trying the install anyway"
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q --no-install-recommends \
		-o DPkg::Lock::Timeout=300 $miss >"$BUILD/apt.log" 2>&1 ||
		log "apt-get install failed (see $BUILD/apt.log); missing proxies will be reported as failed"
	DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q --no-install-recommends \
		-o DPkg::Lock::Timeout=300 linux-perf strace >>"$BUILD/apt.log" 2>&1 || true
	if [ "$POLICY_CREATED" = 1 ]; then
		rm -f /usr/sbin/policy-rc.d
		POLICY_CREATED=0
	fi
	stop_daemons
}

# ---------------------------------------------------------------- build
LOADGEN=
BENCHSRV=
TLSPLICE=

# Sets up a meson dir; prints nothing, returns 0 when build.ninja exists.
meson_dir() {
	local dir=$1
	shift
	[ -f "$dir/build.ninja" ] && return 0
	mkdir -p "$dir"
	meson setup "$dir" "$ROOT" --buildtype=release "$@" >"$dir/meson.log" 2>&1
}

build() {
	local fb=$BUILD/bench-fallback
	if meson_dir "$BUILD" -Dtests=true; then
		ninja -C "$BUILD" -j2 tests/bench/tlsplice-loadgen tests/bench/tlsplice-benchsrv \
			>"$BUILD/ninja-bench.log" 2>&1 || log "bench programs failed to build with meson"
		ninja -C "$BUILD" -j2 src/tlsplice >"$BUILD/ninja-tlsplice.log" 2>&1 ||
			log "tlsplice failed to build (see $BUILD/ninja-tlsplice.log)"
		TLSPLICE=$BUILD/src/tlsplice
	else
		# A tree whose test files are broken can still give a proxy to measure.
		log "meson setup with tests failed (see $BUILD/meson.log); trying -Dtests=false"
		if meson_dir "$BUILD/core" -Dtests=false; then
			ninja -C "$BUILD/core" -j2 src/tlsplice >"$BUILD/ninja-tlsplice.log" 2>&1 ||
				log "tlsplice failed to build (see $BUILD/ninja-tlsplice.log)"
		fi
		TLSPLICE=$BUILD/core/src/tlsplice
	fi
	LOADGEN=$BUILD/tests/bench/tlsplice-loadgen
	BENCHSRV=$BUILD/tests/bench/tlsplice-benchsrv
	if [ ! -x "$LOADGEN" ] || [ ! -x "$BENCHSRV" ]; then
		log "building the bench programs directly with cc"
		mkdir -p "$fb"
		cc -std=gnu11 -O2 -D_GNU_SOURCE -o "$fb/tlsplice-loadgen" "$ROOT/tests/bench/loadgen.c" \
			"$ROOT/tests/bench/hist.c" "$ROOT/tests/bench/trace.c" \
			-lssl -lcrypto || die "cannot build loadgen"
		cc -std=gnu11 -O2 -D_GNU_SOURCE -o "$fb/tlsplice-benchsrv" "$ROOT/tests/bench/benchsrv.c" ||
			die "cannot build benchsrv"
		LOADGEN=$fb/tlsplice-loadgen
		BENCHSRV=$fb/tlsplice-benchsrv
	fi
}
