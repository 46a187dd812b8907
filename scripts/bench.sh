#!/usr/bin/env bash
# Benchmark tlsplice against HAProxy, nginx (stream), hitch and stunnel.
#
# Every proxy terminates TLS 1.3 (TLS_AES_128_GCM_SHA256, X25519, no tickets,
# one worker) in front of the same plain-TCP echo backend. The proxy runs on
# core 0; the load generator and the backend run on core 1. For each proxy:
#   bulk       MiB/s through the proxy (both directions summed) and proxy CPU s/GiB
#   handshake  full handshakes/s and proxy CPU ms per 1,000 handshakes
#   rr         64-byte request/response: req/s, p99 latency, proxy CPU us/request
#   idle       RSS KiB per idle TLS connection (whole process tree)
# Output: a markdown table (stdout and --out, default build-bench/bench.md)
# and a PNG chart of the ratios next to it.
#
# Usage: scripts/bench.sh [--quick] [--out FILE] [--only LIST] [--no-install]
#                         [--rounds N] [--syscalls] [--build-dir DIR] [--port-base N]
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-bench
OUT=
QUICK=0
INSTALL=1
ONLY=
ROUNDS=
SYSCALLS=0
PORT_BASE=27400
PROXY_CORE=0
LOAD_CORE=1
ALL_PROXIES=(tlsplice haproxy nginx hitch stunnel)
PEERS=(haproxy nginx hitch stunnel)

usage() {
	sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	cat <<EOF
Options:
  --quick           small sizes (a smoke run of about two minutes)
  --out FILE        markdown output (default: BUILD/bench.md; the chart goes to FILE with .png)
  --only LIST       comma list of proxies (default: ${ALL_PROXIES[*]})
  --no-install      do not apt-get anything
  --syscalls        also count system calls per request / per handshake with strace -c
                    (separate short runs, after the timed ones; slows nothing else)
  --rounds N        measure every proxy N times, interleaved, keep the best (default: 1 quick, 2 full)
  --build-dir DIR   meson build dir (default: build-bench)
  --port-base N     first of the 127.0.0.1 ports used (default: $PORT_BASE)
Sizes can be overridden with BENCH_BULK_C, BENCH_BULK_N, BENCH_BULK_T, BENCH_HS_C,
BENCH_HS_D, BENCH_RR_C, BENCH_RR_D, BENCH_IDLE_N, BENCH_IDLE_C, BENCH_IDLE_T, BENCH_SPEED_SECS.
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--out) OUT=$2; shift ;;
	--out=*) OUT=${1#*=} ;;
	--only) ONLY=$2; shift ;;
	--only=*) ONLY=${1#*=} ;;
	--no-install) INSTALL=0 ;;
	--syscalls) SYSCALLS=1 ;;
	--rounds) ROUNDS=$2; shift ;;
	--rounds=*) ROUNDS=${1#*=} ;;
	--build-dir) BUILD=$2; shift ;;
	--build-dir=*) BUILD=${1#*=} ;;
	--port-base) PORT_BASE=$2; shift ;;
	--port-base=*) PORT_BASE=${1#*=} ;;
	-h|--help) usage; exit 0 ;;
	*) echo "bench.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
OUT=${OUT:-$BUILD/bench.md}
PNG=${OUT%.md}.png
PROXIES=("${ALL_PROXIES[@]}")
[ -n "$ONLY" ] && IFS=, read -r -a PROXIES <<<"$ONLY"

if [ "$QUICK" = 1 ]; then
	BULK_C=4; BULK_N=32M; BULK_T=60
	HS_C=16; HS_D=4
	RR_C=16; RR_D=4
	IDLE_N=500; IDLE_C=50; IDLE_T=60
	SPEED_SECS=1
	ROUNDS=${ROUNDS:-1}
else
	BULK_C=8; BULK_N=512M; BULK_T=150
	HS_C=32; HS_D=10
	RR_C=16; RR_D=10
	IDLE_N=4000; IDLE_C=64; IDLE_T=120
	SPEED_SECS=3
	ROUNDS=${ROUNDS:-2}
fi
# Any size can be overridden from the environment, e.g. BENCH_IDLE_N=1000.
for v in BULK_C BULK_N BULK_T HS_C HS_D RR_C RR_D IDLE_N IDLE_C IDLE_T SPEED_SECS; do
	o=BENCH_$v
	[ -n "${!o:-}" ] && printf -v "$v" '%s' "${!o}"
done
case $ROUNDS in ''|*[!0-9]*|0) echo "bench.sh: bad --rounds" >&2; exit 2 ;; esac
RR_SIZE=64

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
STARTED=()          # pids this script started (each a process-tree root)
POLICY_CREATED=0

# Prints the pids of ROOT and all its descendants.
tree_pids() {
	ps -e -o pid=,ppid= 2>/dev/null | awk -v r="$1" '
		{ par[$1] = $2; all[NR] = $1 }
		END {
			inset[r] = 1; grow = 1
			while (grow) {
				grow = 0
				for (i in all) {
					p = all[i]
					if (!(p in inset) && (par[p] in inset)) { inset[p] = 1; grow = 1 }
				}
			}
			for (p in inset) print p
		}'
}

# Stops a process tree: TERM, up to 5 s for it to go, then KILL.
stop_tree() {
	local root=$1 pids i
	kill -0 "$root" 2>/dev/null || { wait "$root" 2>/dev/null; return 0; }
	pids=$(tree_pids "$root")
	# shellcheck disable=SC2086  # a list of pids
	kill -TERM $pids 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$root" 2>/dev/null || break
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
	wait "$root" 2>/dev/null
	return 0
}

cleanup() {
	local p
	for p in "${STARTED[@]}"; do
		stop_tree "$p"
	done
	STARTED=()
	if [ "$POLICY_CREATED" = 1 ]; then
		rm -f /usr/sbin/policy-rc.d
		POLICY_CREATED=0
	fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

# Runs "$@" in the background on core CORE; the pid goes to STARTED and $LAST_PID.
start_bg() {
	local core=$1 logf=$2
	shift 2
	taskset -c "$core" "$@" >"$logf" 2>&1 &
	LAST_PID=$!
	STARTED+=("$LAST_PID")
}

forget_pid() {
	local p keep=()
	for p in "${STARTED[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	STARTED=("${keep[@]}")
}

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
			-lssl -lcrypto || die "cannot build loadgen"
		cc -std=gnu11 -O2 -D_GNU_SOURCE -o "$fb/tlsplice-benchsrv" "$ROOT/tests/bench/benchsrv.c" ||
			die "cannot build benchsrv"
		LOADGEN=$fb/tlsplice-loadgen
		BENCHSRV=$fb/tlsplice-benchsrv
	fi
}

# ---------------------------------------------------------------- configs
WORK=
CERT=
KEY=
PEM=

make_cert() {
	CERT=$WORK/cert.pem
	KEY=$WORK/key.pem
	PEM=$WORK/combined.pem
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
		-subj /CN=localhost -addext subjectAltName=DNS:localhost \
		-keyout "$KEY" -out "$CERT" >/dev/null 2>&1 || die "cannot make the certificate"
	cat "$CERT" "$KEY" >"$PEM"
	# For peers without a knob for the TLS 1.3 ticket count (see env_for).
	cat >"$WORK/no-tickets.cnf" <<EOF
openssl_conf = bench_conf
[bench_conf]
ssl_conf = bench_ssl
[bench_ssl]
system_default = bench_sys
[bench_sys]
NumTickets = 0
EOF
}

# cfg_NAME FPORT BPORT writes the config; cmd_NAME prints the command line.
cfg_tlsplice() {
	cat >"$WORK/tlsplice.ini" <<EOF
[global]
workers = 1
access_log = off
log_level = warn
shutdown_timeout = 1s

[frontend bench]
listen = 127.0.0.1:$1
cert = cert.pem
key = key.pem
backend = b
tls_min_version = TLSv1.3
ciphersuites = TLS_AES_128_GCM_SHA256
session_tickets = off

[backend b]
server = 127.0.0.1:$2
check = none
EOF
}
cmd_tlsplice() { echo "$TLSPLICE -c $WORK/tlsplice.ini"; }

cfg_haproxy() {
	cat >"$WORK/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 9000
    tune.ssl.cachesize 0
    ssl-server-verify none
    pidfile $WORK/haproxy.pid

defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s

frontend bench
    bind 127.0.0.1:$1 ssl crt $PEM ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3 ciphersuites TLS_AES_128_GCM_SHA256 curves X25519 no-tls-tickets
    default_backend b

backend b
    server s1 127.0.0.1:$2
EOF
}
cmd_haproxy() { echo "haproxy -db -f $WORK/haproxy.cfg"; }

cfg_nginx() {
	local mod
	mod=$(dpkg -L libnginx-mod-stream 2>/dev/null | grep 'ngx_stream_module\.so$' | head -1)
	[ -n "$mod" ] || mod=/usr/lib/nginx/modules/ngx_stream_module.so
	mkdir -p "$WORK/nginx"
	cat >"$WORK/nginx.conf" <<EOF
load_module $mod;
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 9000; }
stream {
    server {
        listen 127.0.0.1:$1 ssl;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.3;
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
        ssl_ecdh_curve X25519;
        ssl_session_tickets off;
        ssl_session_cache off;
        proxy_pass 127.0.0.1:$2;
        proxy_timeout 300s;
    }
}
EOF
}
cmd_nginx() { echo "nginx -p $WORK/nginx -e $WORK/nginx-error.log -c $WORK/nginx.conf"; }

cfg_hitch() {
	local user=nobody group=nogroup
	# hitch refuses to run its workers as root
	getent passwd _hitch >/dev/null && user=_hitch
	getent group _hitch >/dev/null && group=_hitch
	mkdir -p "$WORK/hitch-ocsp"
	cat >"$WORK/hitch.conf" <<EOF
user = "$user"
group = "$group"
frontend = "[127.0.0.1]:$1"
backend = "[127.0.0.1]:$2"
pem-file = "$PEM"
workers = 1
backlog = 4096
keepalive = 3600
tls-protos = TLSv1.3
ciphersuites = "TLS_AES_128_GCM_SHA256"
ecdh-curve = "X25519"
daemon = off
syslog = off
log-level = 1
ocsp-dir = "$WORK/hitch-ocsp"
EOF
}
cmd_hitch() { echo "hitch --config=$WORK/hitch.conf"; }

cfg_stunnel() {
	cat >"$WORK/stunnel.conf" <<EOF
foreground = yes
pid = $WORK/stunnel.pid
syslog = no
output = $WORK/stunnel-out.log
debug = 3

[bench]
accept = 127.0.0.1:$1
connect = 127.0.0.1:$2
cert = $CERT
key = $KEY
sslVersionMin = TLSv1.3
sslVersionMax = TLSv1.3
ciphersuites = TLS_AES_128_GCM_SHA256
curves = X25519
options = NO_TICKET
sessionCacheSize = 1
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
EOF
}
cmd_stunnel() { echo "stunnel4 $WORK/stunnel.conf"; }

# Environment per proxy. With TLS 1.3, OpenSSL 3.0 still sends two (stateful)
# tickets per handshake when a server only sets SSL_OP_NO_TICKET, which is
# what "no-tls-tickets" (HAProxy), "ssl_session_tickets off" (nginx) and
# "options = NO_TICKET" (stunnel) do; hitch has no knob. The peers therefore
# get NumTickets = 0 through OPENSSL_CONF. tlsplice must manage with its own
# "session_tickets = off": the details table shows tickets per handshake.
env_for() {
	case $1 in
	tlsplice) echo "BENCH_PROXY=$1" ;;
	*) echo "OPENSSL_CONF=$WORK/no-tickets.cnf" ;;
	esac
}

binary_for() {
	case $1 in
	tlsplice) echo "$TLSPLICE" ;;
	stunnel) echo stunnel4 ;;
	*) echo "$1" ;;
	esac
}

version_of() {
	case $1 in
	tlsplice) "$TLSPLICE" -V 2>&1 | head -1 ;;
	haproxy) haproxy -v 2>&1 | head -1 | awk '{print "HAProxy " $3}' ;;
	nginx) nginx -v 2>&1 | sed 's/.*version: //' ;;
	hitch) hitch --version 2>&1 | head -1 ;;
	stunnel) stunnel4 -version 2>&1 | grep -m1 '^stunnel' | awk '{print "stunnel " $2}' ;;
	esac
}

# ---------------------------------------------------------------- measuring
CLK_TCK=$(getconf CLK_TCK)

# CPU ticks (user+system, including reaped children) of a whole process tree.
tree_ticks() {
	local p sum=0 f
	for p in $(tree_pids "$1"); do
		f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		f=${f##*) }
		sum=$((sum + $(awk '{print $12 + $13 + $14 + $15}' <<<"$f")))
	done
	echo "$sum"
}

# Resident KiB of a whole process tree.
tree_rss() {
	local p sum=0 v
	for p in $(tree_pids "$1"); do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# "busy total" ticks of one CPU from /proc/stat.
cpu_ticks() {
	awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

# kv "RESULT a=1 b=2" b -> 2
kv() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2; exit }'; }
status_of() { if [ -n "$1" ]; then kv "$1" status; else echo "no result"; fi; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }

declare -A R          # R[proxy.metric] = value
declare -A NOTE       # NOTE[proxy] = why it failed

# put PROXY METRIC VALUE [PHASE]: keeps the best value over rounds for ranked
# metrics, and remembers whether the proxy's core was contested in that PHASE.
NOISY_PCT=25
put() {
	local k=$1.$2 v=$3 d=${MDIR[$2]:-} other=${4:+${R[$1.$4_other]:-0}}
	if [ -z "$d" ] || [ -z "${R[$k]:-}" ] ||
		awk -v v="$v" -v o="${R[$k]}" -v d="$d" 'BEGIN { exit !(d == "+" ? v > o : v < o) }'; then
		R[$k]=$v
		R[$k.noisy]=$([ -n "$other" ] && [ "$other" -gt "$NOISY_PCT" ] && echo '*')
	fi
	return 0 # the test above is no failure of the measurement
}

# loadgen LIMIT ARGS...: runs on the load core, bounded; sets RES to the RESULT line.
# It runs in the background and is waited for, so a signal reaches our trap at once.
loadgen() {
	local d=$1 out=$WORK/loadgen.out pid
	shift
	timeout -k 5 "$((d + 30))" taskset -c "$LOAD_CORE" "$LOADGEN" "$@" >"$out" 2>>"$WORK/loadgen.err" &
	pid=$!
	STARTED+=("$pid")
	wait "$pid"
	forget_pid "$pid"
	RES=$(grep '^RESULT' "$out" | tail -1)
}

# Other engineers' jobs share this host: before a phase, wait (at most
# QUIET_MAX half-second samples) for the proxy's core to be mostly idle.
QUIET_MAX=10
QUIET_PCT=25
wait_quiet() {
	local i a b busy
	for i in $(seq "$QUIET_MAX"); do
		read -r -a a < <(cpu_ticks "$PROXY_CORE")
		sleep 0.5
		read -r -a b < <(cpu_ticks "$PROXY_CORE")
		busy=$(( 100 * (b[0] - a[0]) / (b[1] - a[1] + 1) ))
		[ "$busy" -lt "$QUIET_PCT" ] && return 0
	done
	log "core $PROXY_CORE still ${busy}% busy with other work; measuring anyway"
}

# phase PROXY PID NAME LIMIT loadgen-args...: sets RES and TICKS (proxy CPU),
# and R[PROXY.NAME_other]: % of the proxy's core used by anything else meanwhile.
phase() {
	local proxy=$1 pid=$2 name=$3 limit=$4 t0 t1 c0 c1 l0 l1
	shift 4
	wait_quiet
	read -r -a l0 < <(cpu_ticks "$LOAD_CORE")
	read -r -a c0 < <(cpu_ticks "$PROXY_CORE")
	t0=$(tree_ticks "$pid")
	loadgen "$limit" "$@"
	t1=$(tree_ticks "$pid")
	read -r -a c1 < <(cpu_ticks "$PROXY_CORE")
	read -r -a l1 < <(cpu_ticks "$LOAD_CORE")
	R[$proxy.${name}_load]=$(calc "100 * (${l1[0]} - ${l0[0]}) / ((${l1[1]} - ${l0[1]}) + 0.001)" 0)
	TICKS=$((t1 - t0))
	R[$proxy.${name}_other]=$(calc "100 * ((${c1[0]} - ${c0[0]}) - $TICKS) / ((${c1[1]} - ${c0[1]}) + 0.001)" 0)
	log "$proxy $name: ${RES:-no result} cpu=$(calc "$TICKS / $CLK_TCK" 2)s other-on-core$PROXY_CORE=${R[$proxy.${name}_other]}% core$LOAD_CORE-busy=${R[$proxy.${name}_load]}%"
	[ -n "$RES" ] && [ "$(kv "$RES" status)" = ok ]
}

measure_bulk() {
	local proxy=$1 pid=$2 bytes
	phase "$proxy" "$pid" bulk "$BULK_T" bulk -p "$FPORT" -c "$BULK_C" -n "$BULK_N" -d "$BULK_T" ||
		{ NOTE[$proxy]+="bulk: $(status_of "$RES"); "; return 1; }
	bytes=$(kv "$RES" bytes)
	put "$proxy" bulk_mibs "$(kv "$RES" mib_s)" bulk
	put "$proxy" bulk_cpu "$(calc "($TICKS / $CLK_TCK) / ($bytes / 1073741824)" 2)" bulk
	put "$proxy" bulk_busy "$(calc "100 * ($TICKS / $CLK_TCK) / $(kv "$RES" secs)" 0)" bulk
}

measure_hs() {
	local proxy=$1 pid=$2 n
	phase "$proxy" "$pid" handshake "$HS_D" handshake -p "$FPORT" -c "$HS_C" -d "$HS_D" ||
		{ NOTE[$proxy]+="handshake: $(status_of "$RES"); "; [ -n "$RES" ] || return 1; }
	n=$(kv "$RES" handshakes)
	[ "${n:-0}" -gt 0 ] || return 1
	put "$proxy" hs_s "$(kv "$RES" hs_s)" handshake
	put "$proxy" hs_cpu "$(calc "1000 * 1000 * ($TICKS / $CLK_TCK) / $n" 1)" handshake
	put "$proxy" hs_busy "$(calc "100 * ($TICKS / $CLK_TCK) / $(kv "$RES" secs)" 0)" handshake
	put "$proxy" tickets "$(calc "$(kv "$RES" tickets) / $n" 2)" handshake
}

measure_rr() {
	local proxy=$1 pid=$2 n
	phase "$proxy" "$pid" rr "$RR_D" rr -p "$FPORT" -c "$RR_C" -s "$RR_SIZE" -d "$RR_D" ||
		{ NOTE[$proxy]+="rr: $(status_of "$RES"); "; [ -n "$RES" ] || return 1; }
	n=$(kv "$RES" requests)
	[ "${n:-0}" -gt 0 ] || return 1
	put "$proxy" rr_rps "$(kv "$RES" rps)" rr
	put "$proxy" rr_p50 "$(kv "$RES" p50_us)" rr
	put "$proxy" rr_p99 "$(kv "$RES" p99_us)" rr
	put "$proxy" rr_cpu "$(calc "1000000 * ($TICKS / $CLK_TCK) / $n" 2)" rr
	put "$proxy" rr_busy "$(calc "100 * ($TICKS / $CLK_TCK) / $(kv "$RES" secs)" 0)" rr
}

# Opens IDLE_N connections, reads RSS when the loadgen says all are up.
measure_idle() {
	local proxy=$1 pid=$2 rss0 rss1 line="" res="" lpid fifo=$WORK/idle.fifo fd
	rss0=$(tree_rss "$pid")
	rm -f "$fifo"
	mkfifo "$fifo"
	exec {fd}<>"$fifo"   # read-write: never blocks, and keeps what the loadgen wrote
	timeout -k 5 "$((IDLE_T + 30))" taskset -c "$LOAD_CORE" "$LOADGEN" idle \
		-p "$FPORT" -c "$IDLE_C" -n "$IDLE_N" -d "$IDLE_T" >"$fifo" 2>>"$WORK/loadgen.err" &
	lpid=$!
	STARTED+=("$lpid")
	# The READY line is the readiness signal; RESULT instead, or a timeout, means it failed.
	read -r -t "$((IDLE_T + 10))" -u "$fd" line || true
	if [[ $line == READY* ]]; then
		rss1=$(tree_rss "$pid")
		kill -TERM "$lpid" 2>/dev/null
		read -r -t 30 -u "$fd" res || true
	else
		res=$line
	fi
	exec {fd}<&-
	rm -f "$fifo"
	stop_tree "$lpid"
	forget_pid "$lpid"
	log "$proxy idle: ${line%% *} rss ${rss0} -> ${rss1:-?} KiB; ${res:-no result}"
	[[ $line == READY* ]] || { NOTE[$proxy]+="idle: $(status_of "$res"); "; return 1; }
	put "$proxy" idle_kib "$(calc "($rss1 - $rss0) / $IDLE_N" 2)"
	put "$proxy" rss_base "$rss0"
}

# ---------------------------------------------------------------- one proxy
# Pids listening on TCP port $1 (empty when free).
listeners() { ss -Htlnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u; }

# Sets FPORT/BPORT to two free ports at or after $1 (others may share this host).
pick_ports() {
	local p=$1 i
	for i in $(seq 200); do
		if [ -z "$(ss -Htln "sport = :$p or sport = :$((p + 1))" 2>/dev/null)" ]; then
			FPORT=$p; BPORT=$((p + 1)); return 0
		fi
		p=$((p + 2))
	done
	return 1
}

# strace_run PROXY PID NAME UNITS loadgen-args...: counts the proxy tree's
# system calls while the loadgen runs; sets R[PROXY.sys_NAME] (calls per unit)
# and R[PROXY.sys_NAME_eagain] and R[PROXY.sys_NAME_epollctl].
strace_run() {
	local proxy=$1 pid=$2 name=$3 units=$4 spid pargs=() p i sum
	shift 4
	for p in $(tree_pids "$pid"); do pargs+=(-p "$p"); done
	strace -c -f "${pargs[@]}" -o "$WORK/$proxy-strace-$name.txt" 2>"$WORK/$proxy-strace-$name.err" &
	spid=$!
	STARTED+=("$spid")
	# strace says "attached" once per pid: that is the readiness signal
	for i in $(seq 50); do
		[ "$(grep -c attached "$WORK/$proxy-strace-$name.err")" -ge $(( ${#pargs[@]} / 2 )) ] && break
		sleep 0.1
	done
	loadgen 60 "$@" -p "$FPORT" -d 60
	kill -INT "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	forget_pid "$spid"
	sum=$(awk '$NF == "total" { print $(NF-2), ($(NF-1) ~ /^[0-9]+$/ ? $(NF-1) : 0) }' "$WORK/$proxy-strace-$name.txt")
	[ -n "$sum" ] && [ "$units" -gt 0 ] || return 1
	R[$proxy.sys_$name]=$(calc "${sum% *} / $units" 1)
	R[$proxy.sys_${name}_eagain]=$(calc "${sum#* } / $units" 1)
	R[$proxy.sys_${name}_epollctl]=$(calc "$(awk '$NF == "epoll_ctl" { print $4 }' "$WORK/$proxy-strace-$name.txt" | head -1 | grep . || echo 0) / $units" 1)
}

syscall_profile() {
	local proxy=$1 pid=$2
	command -v strace >/dev/null || { log "strace missing: no syscall counts"; return 1; }
	strace_run "$proxy" "$pid" rr 20000 rr -c 16 -n 20000 && strace_run "$proxy" "$pid" hs 2000 handshake -c 16 -n 2000
	log "$proxy syscalls: per request ${R[$proxy.sys_rr]:-?} (EAGAIN ${R[$proxy.sys_rr_eagain]:-?}), per handshake ${R[$proxy.sys_hs]:-?} (epoll_ctl ${R[$proxy.sys_hs_epollctl]:-?})"
}

run_proxy() {
	local proxy=$1 idx=$2 bin ppid bpid cmd envv foreign
	bin=$(binary_for "$proxy")
	if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "$bin" ]; then
		NOTE[$proxy]="not installed/built ($bin)"
		log "$proxy: ${NOTE[$proxy]}"
		return 1
	fi
	pick_ports $((PORT_BASE + 10 * idx)) || { NOTE[$proxy]+="no free ports; "; return 1; }
	R[$proxy.version]=$(version_of "$proxy")
	"cfg_$proxy" "$FPORT" "$BPORT"
	cmd=$("cmd_$proxy")
	envv=$(env_for "$proxy")
	start_bg "$LOAD_CORE" "$WORK/$proxy-backend.log" "$BENCHSRV" -l "127.0.0.1:$BPORT" -m echo -d 3600
	bpid=$LAST_PID
	# shellcheck disable=SC2086
	start_bg "$PROXY_CORE" "$WORK/$proxy.log" env "$envv" $cmd
	ppid=$LAST_PID
	log "$proxy: started pid $ppid on 127.0.0.1:$FPORT -> $BPORT: $cmd"
	if ! taskset -c "$LOAD_CORE" "$LOADGEN" probe -p "$FPORT" -d 10 >"$WORK/$proxy-probe.txt" 2>&1; then
		NOTE[$proxy]+="does not serve (see $WORK/$proxy.log); "
		log "$proxy: does not serve: $(tail -3 "$WORK/$proxy.log" | tr '\n' ' ')"
		stop_tree "$ppid"; forget_pid "$ppid"
		stop_tree "$bpid"; forget_pid "$bpid"
		return 1
	fi
	measure_bulk "$proxy" "$ppid" || log "$proxy: bulk failed"
	measure_hs "$proxy" "$ppid" || log "$proxy: handshake failed"
	measure_rr "$proxy" "$ppid" || log "$proxy: rr failed"
	measure_idle "$proxy" "$ppid" || log "$proxy: idle failed"
	[ "$SYSCALLS" = 1 ] && [ -z "${R[$proxy.sys_rr]:-}" ] && { syscall_profile "$proxy" "$ppid" || true; }
	# SO_REUSEPORT lets another process join our port unnoticed: say so.
	foreign=$(comm -23 <(listeners "$FPORT") <(tree_pids "$ppid" | sort -u) | tr '\n' ' ')
	if [ -n "${foreign// }" ]; then
		NOTE[$proxy]+="port $FPORT shared with foreign pids $foreign(results suspect); "
		log "$proxy: port $FPORT also served by pids $foreign"
	fi
	kill -0 "$ppid" 2>/dev/null || NOTE[$proxy]+="exited during the run (see $WORK/$proxy.log); "
	stop_tree "$ppid"; forget_pid "$ppid"
	stop_tree "$bpid"; forget_pid "$bpid"
	return 0
}

# ---------------------------------------------------------------- openssl floors
speed_floors() {
	local out
	out=$(timeout 120 taskset -c "$PROXY_CORE" openssl speed -mr -seconds "$SPEED_SECS" \
		-evp aes-128-gcm -bytes 16384 2>/dev/null)
	SP_AES=$(awk -F: '/^\+F:/ { printf "%.0f", $4 / 1048576 }' <<<"$out")
	out=$(timeout 120 taskset -c "$PROXY_CORE" openssl speed -mr -seconds "$SPEED_SECS" ecdsap256 2>/dev/null)
	SP_SIGN=$(awk -F: '/^\+F4:/ { printf "%.0f", $4 }' <<<"$out")
	SP_VERIFY=$(awk -F: '/^\+F4:/ { printf "%.0f", $5 }' <<<"$out")
	out=$(timeout 120 taskset -c "$PROXY_CORE" openssl speed -mr -seconds "$SPEED_SECS" ecdhx25519 2>/dev/null)
	SP_X25519=$(awk -F: '/^\+F5:/ { printf "%.0f", $4 }' <<<"$out")
	log "openssl speed (core $PROXY_CORE): aes-128-gcm ${SP_AES} MiB/s, ecdsap256 sign ${SP_SIGN}/s verify ${SP_VERIFY}/s, x25519 ${SP_X25519}/s"
}

# ---------------------------------------------------------------- report
# metric keys, headers, direction (+ higher is better, - lower is better)
METRICS=(bulk_mibs bulk_cpu hs_s hs_cpu rr_rps rr_p99 rr_cpu idle_kib)
declare -A MHEAD=(
	[bulk_mibs]="bulk MiB/s" [bulk_cpu]="bulk CPU s/GiB"
	[hs_s]="handshakes/s" [hs_cpu]="CPU ms/1k hs"
	[rr_rps]="rr req/s" [rr_p99]="rr p99 µs" [rr_cpu]="CPU µs/req"
	[idle_kib]="KiB/idle conn")
declare -A MDIR=([bulk_mibs]=+ [bulk_cpu]=- [hs_s]=+ [hs_cpu]=- [rr_rps]=+ [rr_p99]=- [rr_cpu]=- [idle_kib]=-)

best_peer() {   # best peer value for metric
	local m=$1 p v best=
	for p in "${PEERS[@]}"; do
		v=${R[$p.$m]:-}
		[ -n "$v" ] || continue
		if [ -z "$best" ]; then best=$v
		elif [ "${MDIR[$m]}" = + ]; then best=$(awk -v a="$v" -v b="$best" 'BEGIN{print (a>b)?a:b}')
		else best=$(awk -v a="$v" -v b="$best" 'BEGIN{print (a<b)?a:b}')
		fi
	done
	echo "$best"
}

write_report() {
	local p m v b line cells ratio dat=$WORK/ratios.dat
	declare -A BEST
	for m in "${METRICS[@]}"; do BEST[$m]=$(best_peer "$m"); done
	{
		echo "# tlsplice benchmark ($( [ "$QUICK" = 1 ] && echo quick || echo full ) run, $(date -u +%Y-%m-%dT%H:%MZ))"
		echo
		echo "Host: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r), $(openssl version | awk '{print $1, $2}')."
		echo "Proxy on core $PROXY_CORE; load generator and echo backend on core $LOAD_CORE. TLS 1.3, TLS_AES_128_GCM_SHA256, X25519, ECDSA P-256, no tickets, one worker."
		echo "Best of $ROUNDS interleaved round(s). bulk: $BULK_C connections x $BULK_N each way (MiB/s counts both directions); handshake: $HS_C in flight for ${HS_D}s; rr: $RR_C connections x ${RR_SIZE}-byte echo for ${RR_D}s; idle: $IDLE_N connections."
		echo
		echo "Each cell: value (value / best of HAProxy, nginx, hitch and stunnel for that column; ↑ higher is better, ↓ lower is better)."
		echo "\\* the best value was measured while other work used more than ${NOISY_PCT}% of the proxy's core (this host is shared): treat it with care."
		echo "The chart ($(basename "$PNG")) shows the same ratios turned so that higher is always better (best / value for ↓ columns)."
		echo
		line="| proxy |"; cells="|---|"
		for m in "${METRICS[@]}"; do
			line+=" ${MHEAD[$m]} $( [ "${MDIR[$m]}" = + ] && echo ↑ || echo ↓) |"; cells+="---:|"
		done
		echo "$line"; echo "$cells"
		for p in "${PROXIES[@]}"; do
			line="| $p |"
			for m in "${METRICS[@]}"; do
				v=${R[$p.$m]:-}; b=${BEST[$m]}
				if [ -z "$v" ]; then line+=" failed |"
				elif [ -n "$b" ] && awk -v b="$b" 'BEGIN{exit !(b > 0)}'; then
					line+=" $v${R[$p.$m.noisy]:-} ($(calc "$v / $b" 2)) |"
				else line+=" $v${R[$p.$m.noisy]:-} |"
				fi
			done
			echo "$line"
		done
		echo
		echo "Details (last round): % of the proxy's core used by the proxy and by everything else"
		echo "(other processes, softirq), and how busy the load generator's core was, during"
		echo "bulk / handshake / rr; p50 latency; TLS 1.3 tickets per handshake (must be 0);"
		echo "RSS before the idle test."
		echo
		echo "| proxy | version | proxy busy % | other on proxy core % | load core busy % | rr p50 µs | tickets/hs | RSS base KiB | note |"
		echo "|---|---|---|---|---|---:|---:|---:|---|"
		for p in "${PROXIES[@]}"; do
			echo "| $p | ${R[$p.version]:-} | ${R[$p.bulk_busy]:--}/${R[$p.hs_busy]:--}/${R[$p.rr_busy]:--} | ${R[$p.bulk_other]:--}/${R[$p.handshake_other]:--}/${R[$p.rr_other]:--} | ${R[$p.bulk_load]:--}/${R[$p.handshake_load]:--}/${R[$p.rr_load]:--} | ${R[$p.rr_p50]:--} | ${R[$p.tickets]:--} | ${R[$p.rss_base]:--} | ${NOTE[$p]:-} |"
		done
		echo
		echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
		if [ "$SYSCALLS" = 1 ]; then
			echo
			echo "System calls of the proxy's process tree (strace -c, separate untimed runs): rr with"
			echo "16 connections x 20,000 requests; 2,000 handshakes (each with a 64-byte echo)."
			echo
			echo "| proxy | syscalls/request | of them failing (EAGAIN) | syscalls/handshake | failing/handshake | epoll_ctl/handshake |"
			echo "|---|---:|---:|---:|---:|---:|"
			for p in "${PROXIES[@]}"; do
				echo "| $p | ${R[$p.sys_rr]:--} | ${R[$p.sys_rr_eagain]:--} | ${R[$p.sys_hs]:--} | ${R[$p.sys_hs_eagain]:--} | ${R[$p.sys_hs_epollctl]:--} |"
			done
		fi
		echo
		echo "openssl speed, one core (core $PROXY_CORE): aes-128-gcm (16 KiB, -evp) ${SP_AES:-?} MiB/s;" \
			"ecdsap256 sign ${SP_SIGN:-?}/s, verify ${SP_VERIFY:-?}/s; x25519 ${SP_X25519:-?} ops/s."
		if [ -n "${SP_AES:-}" ] && [ -n "${SP_SIGN:-}" ] && [ -n "${SP_X25519:-}" ]; then
			echo "Floors: bulk $(calc "1024 / $SP_AES" 3) CPU s/GiB (one AES-GCM pass per relayed byte);" \
				"handshake $(calc "1e6 / $SP_SIGN + 2e6 / $SP_X25519" 1) CPU ms/1k (one sign + two X25519)."
		fi
		echo
		echo "Notes:"
		echo "- The load generator does as much TLS work as the proxy (plus the signature check"
		echo "  in each handshake), on one core shared with the backend, so throughput columns"
		echo "  can be capped by it: where the proxy's busy % is well below 100, compare the CPU"
		echo "  columns, which do not depend on that."
		echo "- CPU is user+system time of the proxy's whole process tree (nginx master+worker,"
		echo "  hitch manager+child); RSS is summed over the same tree."
		echo "- Peers get NumTickets = 0 through OPENSSL_CONF: with only SSL_OP_NO_TICKET"
		echo "  (their own 'tickets off' settings) OpenSSL 3.0 still sends two TLS 1.3 tickets."
		echo "- stunnel runs one thread per connection; it has no single-worker mode."
	} >"$OUT"
	cat "$OUT"

	# chart data: per metric, performance relative to the best peer, higher is better
	{
		printf 'metric'; for p in "${PROXIES[@]}"; do printf '\t%s' "$p"; done; echo
		for m in "${METRICS[@]}"; do
			printf '"%s"' "${MHEAD[$m]}"
			for p in "${PROXIES[@]}"; do
				v=${R[$p.$m]:-}; b=${BEST[$m]}
				if [ -z "$v" ] || [ -z "$b" ] || ! awk -v v="$v" -v b="$b" 'BEGIN{exit !(v > 0 && b > 0)}'; then
					ratio=NaN
				elif [ "${MDIR[$m]}" = + ]; then ratio=$(calc "$v / $b" 3)
				else ratio=$(calc "$b / $v" 3)
				fi
				printf '\t%s' "$ratio"
			done
			echo
		done
	} >"$dat"
	cp "$dat" "${OUT%.md}.dat"
	if ! grep -qv NaN <(tail -n +2 "$dat" | cut -f2-); then
		log "no peer results: no chart"
	elif command -v gnuplot >/dev/null; then
		gnuplot <<EOF 2>"$WORK/gnuplot.err" || log "gnuplot failed (see $WORK/gnuplot.err)"
set terminal pngcairo size 1400,600 noenhanced
set output "$PNG"
set title "TLS termination, relative to the best peer (1 = best of haproxy/nginx/hitch/stunnel; higher is better; log scale)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set datafile missing "NaN"
set logscale y 2
set yrange [0.125:8]
set ytics ("1/8" 0.125, "1/4" 0.25, "1/2" 0.5, "1" 1, "2" 2, "4" 4, "8" 8)
set grid ytics
set key outside right top
set xtics rotate by -20
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2
plot for [i=2:$((${#PROXIES[@]} + 1))] "$dat" using i:xtic(1) title columnheader(i)
EOF
		[ -s "$PNG" ] && log "chart: $PNG"
	fi
	log "table: $OUT"
}

# ---------------------------------------------------------------- main
main() {
	local i p t_start
	t_start=$(date +%s)
	[ "$(id -u)" = 0 ] || log "not root: installs and high fd limits may fail"
	mkdir -p "$BUILD"
	[ "$INSTALL" = 1 ] && install_deps
	command -v taskset >/dev/null || die "taskset missing (util-linux)"
	[ "$(nproc)" -ge 2 ] || { PROXY_CORE=0; LOAD_CORE=0; log "one CPU: everything on core 0"; }
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	build
	WORK=$BUILD/bench-run
	rm -rf "$WORK"
	mkdir -p "$WORK"
	make_cert
	speed_floors
	local r n=${#PROXIES[@]} j
	for r in $(seq "$ROUNDS"); do
		log "round $r of $ROUNDS"
		# rotate the order each round so no proxy always runs first
		for j in $(seq 0 $((n - 1))); do
			i=$(((j + r - 1) % n))
			p=${PROXIES[$i]}
			[[ ${NOTE[$p]:-} == "not installed"* ]] && continue
			run_proxy "$p" "$i" || true
		done
	done
	write_report
	log "done in $(( $(date +%s) - t_start ))s; logs in $WORK"
}

main
