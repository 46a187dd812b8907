#!/usr/bin/env bash
# Scale and churn against the real tlsplice binary (normal build by default):
#   churn  100,000 short connections (full handshake, 64-byte echo, close_notify, close) in
#          ten rounds of 10,000, RSS sampled after each: the last sample within a small bound
#          of the second. Full handshakes, not resumption: resuming a TLS 1.3 session still
#          runs X25519 and saved under 10% of the proxy's CPU here, so churn takes the path
#          every new client takes. It runs first, on a fresh heap.
#   hold   up to 10,000 concurrent idle TLS connections (as many as the fd hard limit allows:
#          two fds each in the proxy), each then echoes once; RSS per connection; fds back to
#          the baseline once they close
# Prints TAP lines ("ok N - abuse:NAME ...") on stdout, details on stderr; exits 1 on any
# failure. Every process it starts is stopped on exit.
#
# Usage: scripts/scale.sh [--build-dir DIR] [--long]
#   --long   churn of 1,000,000 connections (ten rounds of 100,000)
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../tests/abuse/lib.sh
. tests/abuse/lib.sh
lib_args scale build 60 "$@" || exit 2
lib_init scale
T=$BUILD/tests/abuse
for exe in "$BUILD/src/tlsplice" "$T/tlsplice-abuse-clients" "$BUILD/tests/bench/tlsplice-loadgen"; do
	[ -x "$exe" ] || { tap_fail setup "missing $exe (build $BUILD first)"; exit 1; }
done
ROUND=10000; ROUNDS=10
[ "$LONG" = 1 ] && ROUND=100000
CHURN_BOUND_KB=${SCALE_CHURN_BOUND_KB:-2048}
# A small quarantine keeps ASan's own memory out of the RSS bounds; options given in the
# environment come last and win.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:quarantine_size_mb=16${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}

# The hard fd limit bounds how many connections one proxy can hold (two fds each). Without
# CAP_SYS_RESOURCE it cannot be raised; with it, 10,000 fit.
HARD=$(ulimit -Hn)
if [ "$HARD" != unlimited ] && [ "$HARD" -lt 20400 ] && (ulimit -Hn 20400) 2>/dev/null; then
	ulimit -Hn 20400; HARD=20400
fi
[ "$HARD" = unlimited ] && HARD=1048576
ulimit -n "$HARD"
# Fds the proxy keeps besides two per connection (listeners, epoll, logs, its accept reserve).
RESERVE=${SCALE_FD_RESERVE:-400}
HOLD=$(( (HARD - RESERVE) / 2 )); [ "$HOLD" -gt 10000 ] && HOLD=10000
log "fd hard limit $HARD: holding $HOLD connections"

make_cert || { tap_fail setup "cannot make a certificate"; exit 1; }
BPORT=$(pick_port); FPORT=$(pick_port)
cat >"$WORK/proxy.ini" <<CFG
[global]
workers = 2
max_connections = $HOLD
log_level = info
access_log = off
ktls = off
splice = off
shutdown_timeout = 5s

[frontend scale]
listen = 127.0.0.1:$FPORT
cert = cert.pem
key = key.pem
backend = echo

[backend echo]
server = 127.0.0.1:$BPORT
CFG
start_backend echo echo "$BPORT" || { tap_fail setup "backend did not start"; exit 1; }
start_proxy proxy "$WORK/proxy.ini" || { tap_fail setup "proxy did not start"; exit 1; }
P=$PROXY_PID
probe "$FPORT" 20 || { tap_fail setup "proxy does not relay"; exit 1; }
BASE_FDS=$(base_fds "$P"); BASE_RSS=$(rss_kb "$P")
log "proxy pid $P: $BASE_FDS fds, $BASE_RSS KiB"

# Churn runs first: the hold raises the heap's high-water mark, under which a leak would hide.
# ---------------------------------------------------------------- churn
samples=()
bad=0; total=0; t0=$(date +%s.%N); c0=$(cpu_ticks "$P")
for i in $(seq "$ROUNDS"); do
	r=$("$T/tlsplice-abuse-clients" churn -p "$FPORT" -c 16 -n "$ROUND" -d 600 2>>"$WORK/churn.err")
	hs=$(field "$r" served)
	total=$((total + ${hs:-0}))
	[ "$hs" = "$ROUND" ] || { bad=1; log "churn round $i: $r"; }
	samples+=("$(rss_kb "$P")")
done
t1=$(date +%s.%N); c1=$(cpu_ticks "$P")
second=${samples[1]}; last=${samples[$((ROUNDS - 1))]}
[ $((last - second)) -le "$CHURN_BOUND_KB" ] || bad=1
n=$(wait_fds "$P" "$BASE_FDS" 30); [ "$n" -le "$BASE_FDS" ] || bad=1
rate=$(awk -v n="$total" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
tap_check churn $bad "$total connections (full handshake + echo + close, no resumption) at $rate/s, proxy CPU $(ticks_to_s $((c1 - c0))) s; RSS KiB every $ROUND: ${samples[*]} (last - second = $((last - second)), bound $CHURN_BOUND_KB); fds back to $n (baseline $BASE_FDS)"

# ---------------------------------------------------------------- hold
if [ "$HOLD" -lt 1000 ]; then
	tap_skip scale-hold "the fd hard limit ($HARD) leaves room for only $HOLD connections"
else
	start_bg hold "$T/tlsplice-abuse-clients" hold -p "$FPORT" -n "$HOLD" -c 200 -d 400
	H=$LAST_PID
	bad=0; held_rss=0; held_fds=0; c0=$(cpu_ticks "$P"); BASE_RSS=$(rss_kb "$P")
	if wait_line "$WORK/hold.out" '^READY' 300; then
		held_rss=$(rss_kb "$P"); held_fds=$(fd_count "$P")
		log "$(grep '^READY' "$WORK/hold.out"): proxy $held_fds fds, $held_rss KiB"
		kill -USR1 "$H"
		wait_line "$WORK/hold.out" '^ECHOED' 120 || bad=1
	else
		bad=1
	fi
	kill -TERM "$H"; wait_line "$WORK/hold.out" '^RESULT' 60; wait "$H"; hrc=$?
	c1=$(cpu_ticks "$P")
	r=$(result_of hold); log "hold: $r"
	[ $hrc = 0 ] || bad=1
	n=$(wait_fds "$P" "$BASE_FDS" 30); [ "$n" -le "$BASE_FDS" ] || bad=1
	per=$(awk -v a="$held_rss" -v b="$BASE_RSS" -v n="$HOLD" 'BEGIN {printf "%.1f", (a - b) / n}')
	tap_check scale-hold $bad "$(field "$r" held) of $HOLD idle TLS connections held (up in $(grep -m1 '^READY' "$WORK/hold.out" | sed 's/.*secs=//') s, fd hard limit $HARD), each echoed again ($(field "$r" echoed_again)); proxy $BASE_FDS -> $held_fds -> $n fds, RSS $BASE_RSS -> $held_rss KiB = $per KiB per connection; proxy CPU $(ticks_to_s $((c1 - c0))) s"
fi

stop_proxy "$P"; rc=$STOP_RC
bad=0; [ "$rc" = 0 ] || bad=1
sanitizer_clean "$WORK/proxy.err" || bad=1
tap_check scale-exit-clean $bad "proxy exit status $rc after SIGTERM, sanitizers clean"
[ $TAP_FAILED = 0 ]
