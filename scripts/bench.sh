#!/usr/bin/env bash
# Benchmark tlsplice against HAProxy, nginx (stream), hitch and stunnel.
#
# Every proxy terminates TLS 1.3 (TLS_AES_128_GCM_SHA256, X25519, no tickets,
# one worker) in front of the same plain-TCP echo backend. The proxy runs on
# core 1; the load generator and the backend run on core 0. For each proxy:
#   bulk       MiB/s through the proxy (both directions summed) and proxy CPU s/GiB
#   handshake  full handshakes/s and proxy CPU ms per 1,000 handshakes
#   rr         64-byte request/response at 1, 16, 64 and 256 connections: req/s,
#              p50/p99/p999 latency, proxy CPU us/request
#   idle       RSS KiB per idle TLS connection (whole process tree)
# Output: a markdown table (stdout and --out, default build-bench/bench.md)
# and a PNG chart of the ratios next to it.
#
# Usage: scripts/bench.sh [--quick] [--out FILE] [--only LIST] [--no-install]
#                         [--rounds N] [--syscalls] [--build-dir DIR] [--port-base N]
#                         [--extra NAME=BINARY]... [--phases LIST] [--fifo] [--crosscheck]
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
PROXY_CORE=1
LOAD_CORE=0
ALL_PROXIES=(tlsplice haproxy nginx hitch stunnel)
EXTRA=()            # tlsplice-NAME proxies: another tlsplice binary, same config
declare -A BIN_OF   # tlsplice-NAME -> its binary
PHASES=bulk,hs,rr,idle
CROSSCHECK=0
RT=()               # --fifo: chrt -f 10
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
  --extra NAME=BIN  also measure the tlsplice binary BIN as proxy "tlsplice-NAME", in the
                    same rounds (e.g. a build of another commit, side by side); repeatable
  --phases LIST     comma list of bulk, hs, rr, idle (default: all)
  --crosscheck      also measure with clients that share no code with the load generator
                    (tests/bench/rrclient.py, openssl s_time) and print how the proxy CPU
                    figures agree
  --fifo            run the proxies, the load generator and the backend SCHED_FIFO (root), so
                    that other work on a shared host cannot preempt them: tails then show the
                    proxy, not the neighbours. The kernel still pauses real-time tasks for
                    50 ms a second (sched_rt_runtime_us): a stall of every connection at once
                    each second, which reaches p999 only from about 64 connections up
Sizes can be overridden with BENCH_BULK_C, BENCH_BULK_N, BENCH_BULK_T, BENCH_HS_C,
BENCH_HS_D, BENCH_RR_C (a list, e.g. "1 16"), BENCH_RR_D, BENCH_IDLE_N, BENCH_IDLE_C, BENCH_IDLE_T, BENCH_SPEED_SECS.
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
	--extra) EXTRA+=("$2"); shift ;;
	--extra=*) EXTRA+=("${1#*=}") ;;
	--phases) PHASES=$2; shift ;;
	--phases=*) PHASES=${1#*=} ;;
	--fifo) RT=(chrt -f 10) ;;
	--crosscheck) CROSSCHECK=1 ;;
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
for e in "${EXTRA[@]}"; do
	[[ $e =~ ^([A-Za-z0-9_]+)=(.+)$ ]] || { echo "bench.sh: bad --extra '$e' (NAME=BINARY)" >&2; exit 2; }
	[ -x "${BASH_REMATCH[2]}" ] || { echo "bench.sh: --extra: ${BASH_REMATCH[2]} is not executable" >&2; exit 2; }
	BIN_OF[tlsplice-${BASH_REMATCH[1]}]=$(realpath "${BASH_REMATCH[2]}")
	PROXIES+=("tlsplice-${BASH_REMATCH[1]}")
done
has_phase() { [[ ,$PHASES, == *,$1,* ]]; }

if [ "$QUICK" = 1 ]; then
	BULK_C=4; BULK_N=32M; BULK_T=60
	HS_C=16; HS_D=4
	RR_C="1 16 64 256"; RR_D=3
	IDLE_N=500; IDLE_C=50; IDLE_T=60
	SPEED_SECS=1
	ROUNDS=${ROUNDS:-1}
else
	BULK_C=8; BULK_N=512M; BULK_T=150
	HS_C=32; HS_D=10
	RR_C="1 16 64 256"; RR_D=10
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

# The phases live in scripts/bench/, sourced into this shell in the order they run.
# shellcheck source=bench/procs.sh
. "$ROOT/scripts/bench/procs.sh" || exit 2
# shellcheck source=bench/build.sh
. "$ROOT/scripts/bench/build.sh" || exit 2
# shellcheck source=bench/configs.sh
. "$ROOT/scripts/bench/configs.sh" || exit 2
# shellcheck source=bench/measure.sh
. "$ROOT/scripts/bench/measure.sh" || exit 2
# shellcheck source=bench/crosscheck.sh
. "$ROOT/scripts/bench/crosscheck.sh" || exit 2
# shellcheck source=bench/report.sh
. "$ROOT/scripts/bench/report.sh" || exit 2

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
