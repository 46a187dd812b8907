#!/usr/bin/env bash
# Abuse suite against the real tlsplice binary (ASan+UBSan build by default):
#   hellos     10,000 garbage, truncated and oversized first flights, 500 at a time, while a
#              good client keeps doing handshakes and round trips
#   slowloris  500 handshakes trickling one byte at a time: all closed by handshake_timeout
#   metrics    a 300 MiB body behind Content-Length: 4e9, a 32 MiB request line, 200 idle
#              connections and a byte-per-second trickler against the metrics port
#   emfile     RLIMIT_NOFILE=128 and 1,000 concurrent clients: no spin, no healthy backend
#              marked down, recovery
# Prints TAP lines ("ok N - abuse:NAME ...") on stdout, details on stderr; exits 1 on any
# failure. Every process it starts is stopped on exit.
#
# Usage: scripts/abuse.sh [--build-dir DIR] [--long]
#   --long   ten times the hellos and longer attacks
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../tests/abuse/lib.sh
. tests/abuse/lib.sh
lib_args abuse build-asan 60 "$@" || exit 2
lib_init abuse
T=$BUILD/tests/abuse
for exe in "$BUILD/src/tlsplice" "$T/tlsplice-abuse-hello" "$BUILD/tests/bench/tlsplice-loadgen"; do
	[ -x "$exe" ] || { tap_fail setup "missing $exe (build $BUILD first)"; exit 1; }
done

HELLOS=10000; SLOW=500; BODY=300M; LINE=32M; IDLE=200; FLOOD=1000; FLOOD_SECS=8
[ "$LONG" = 1 ] && { HELLOS=100000; SLOW=1500; BODY=1G; FLOOD_SECS=30; }
SLOW_MARGIN_MS=${ABUSE_SLOW_MARGIN_MS:-500}
RSS_BOUND_KB=$((64 * 1024))     # growth allowed while the metrics port is attacked
LAT_BOUND_MS=250                # worst TLS round trip while the metrics port is attacked
CPU_BOUND_PCT=50                # proxy CPU (one core = 100) while 1,000 clients wait at EMFILE

# A small quarantine keeps ASan's own memory out of the RSS bounds; options given in the
# environment come last and win.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:quarantine_size_mb=16${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
ulimit -n "$(ulimit -Hn)"

make_cert || { tap_fail setup "cannot make a certificate"; exit 1; }
BPORT=$(pick_port); FPORT=$(pick_port); MPORT=$(pick_port)

write_config() { # FILE CHECK_INTERVAL
	cat >"$1" <<CFG
[global]
workers = 2
log_level = info
access_log = $WORK/access.log
shutdown_timeout = 2s
metrics = 127.0.0.1:$MPORT

[frontend abuse]
listen = 127.0.0.1:$FPORT
cert = cert.pem
key = key.pem
backend = echo
handshake_timeout = 2s

[backend echo]
server = 127.0.0.1:$BPORT
check_interval = $2
CFG
}

start_backend echo echo "$BPORT" || { tap_fail setup "backend did not start"; exit 1; }
write_config "$WORK/proxy.ini" 500ms
start_proxy proxy "$WORK/proxy.ini" || { tap_fail setup "proxy did not start"; exit 1; }
P=$PROXY_PID
probe "$FPORT" 20 || { tap_fail setup "proxy does not relay"; exit 1; }
BASE_FDS=$(base_fds "$P")
log "proxy pid $P, baseline $BASE_FDS fds, $(rss_kb "$P") KiB"

# ---------------------------------------------------------------- hellos
start_good good_hs handshake "$FPORT"; GHS=$LAST_PID
start_good good_rr rr "$FPORT"; GRR=$LAST_PID
"$T/tlsplice-abuse-hello" hello -p "$FPORT" -n "$HELLOS" -c 500 -t 10 -d 600 >"$WORK/hello.out" 2>"$WORK/hello.err"
hrc=$?
cat "$WORK/hello.err" >&2
stop_good good_hs "$GHS"; hs=$GOOD_RES
stop_good good_rr "$GRR"; rr=$GOOD_RES
r=$(result_of hello)
log "hellos: $r"; log "good handshakes: $hs"; log "good round trips: $rr"
bad=0
[ $hrc = 0 ] && [ "$(field "$r" timeout)" = 0 ] || bad=1
[ "$(field "$hs" errors)" = 0 ] && [ "$(field "$hs" handshakes)" -gt 0 ] 2>/dev/null || bad=1
[ "$(field "$rr" errors)" = 0 ] && [ "$(field "$rr" requests)" -gt 0 ] 2>/dev/null || bad=1
kill -0 "$P" 2>/dev/null || bad=1
tap_check hellos $bad "$HELLOS bad first flights in $(field "$r" secs) s (seed $(field "$r" seed), kinds $(field "$r" kinds); closed eof=$(field "$r" eof) rst=$(field "$r" rst) aborted-by-us=$(field "$r" aborted) not-closed=$(field "$r" timeout)); good client: $(field "$hs" handshakes) handshakes, $(field "$rr" requests) round trips (max $(field "$rr" max_us) us), errors $(field "$hs" errors)+$(field "$rr" errors)"
n=$(wait_fds "$P" "$BASE_FDS" 15)
tap_check hellos-fds $([ "$n" -le "$BASE_FDS" ]; echo $?) "proxy fds back to $n (baseline $BASE_FDS)"
sanitizer_clean "$WORK/proxy.err"; tap_check hellos-sanitizers $? "no sanitizer report after the hellos"

# ---------------------------------------------------------------- slowloris
before=$(grep -c '"close":"handshake_timeout"' "$WORK/access.log" 2>/dev/null)
"$T/tlsplice-abuse-hello" slowloris -p "$FPORT" -n "$SLOW" -i 0.2 -t 8 -d 30 >"$WORK/slow.out" 2>"$WORK/slow.err"
src=$?
r=$(result_of slow)
log "slowloris: $r"
n=$(wait_fds "$P" "$BASE_FDS" 10)
after=$(grep -c '"close":"handshake_timeout"' "$WORK/access.log" 2>/dev/null)
logged=$((after - before))
min=$(field "$r" close_min_ms); max=$(field "$r" close_max_ms)
bad=0
kill -0 "$P" 2>/dev/null || bad=1
[ $src = 0 ] && [ "$(field "$r" timeout)" = 0 ] || bad=1
# The proxy's timer runs from its cached loop time at accept, a few ms before our clock.
awk -v a="$min" -v b="$max" -v m="$SLOW_MARGIN_MS" 'BEGIN {exit !(a >= 1900 && b <= 2000 + m)}' || bad=1
[ "$logged" -ge "$SLOW" ] || bad=1
[ "$n" -le "$BASE_FDS" ] 2>/dev/null || bad=1
tap_check slowloris $bad "$SLOW one-byte-per-0.2s handshakes closed $min..$max ms after connect (handshake_timeout 2s, margin $SLOW_MARGIN_MS ms), $logged logged close=handshake_timeout, fds back to $n"

# ---------------------------------------------------------------- metrics
. tests/abuse/metrics.sh
metrics_attacks

# ---------------------------------------------------------------- EMFILE
. tests/abuse/emfile.sh
emfile_attack

stop_proxy "$P"; rc=$STOP_RC
bad=0; [ "$rc" = 0 ] || bad=1
sanitizer_clean "$WORK/proxy.err" || bad=1
tap_check exit-clean $bad "proxy exit status $rc after SIGTERM, leak check and sanitizers clean"
[ $TAP_FAILED = 0 ]
