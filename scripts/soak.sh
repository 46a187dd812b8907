#!/usr/bin/env bash
# Chaos soak against the real tlsplice binary (ASan+UBSan build by default): 16 clients stream
# checked data through two frontends (echo: both directions, every byte compared with a
# seeded pattern; sink: upload, then the backend's SHA-256 compared with ours) while the
# five backends (three echo, two sink) are SIGKILLed and restarted at random and the proxy
# is reloaded (SIGHUP, alternating two configurations) every few seconds.
# Checks: no stream completes with a wrong, lost or reordered byte (streams cut by a killed
# backend are counted apart), none stalls, every reload is applied, fds return to the
# baseline, RSS stays flat, and the proxy exits cleanly on SIGTERM with a clean leak check.
# Prints TAP lines on stdout, details on stderr; exits 1 on any failure.
#
# Usage: scripts/soak.sh [--seconds N] [--build-dir DIR]     (default 60 s, build-asan)
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../tests/abuse/lib.sh
. tests/abuse/lib.sh
lib_args soak build-asan 60 "$@" || exit 2
lib_init soak
T=$BUILD/tests/abuse
for exe in "$BUILD/src/tlsplice" "$T/tlsplice-abuse-soak" "$BUILD/tests/tools/tlsplice-testbackend"; do
	[ -x "$exe" ] || { tap_fail setup "missing $exe (build $BUILD first)"; exit 1; }
done
RSS_BOUND_KB=${SOAK_RSS_BOUND_KB:-16384}
# A small quarantine keeps ASan's own memory out of the RSS bounds; options given in the
# environment come last and win.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:quarantine_size_mb=16${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
ulimit -n "$(ulimit -Hn)"

make_cert || { tap_fail setup "cannot make a certificate"; exit 1; }
NAMES=(e1 e2 e3 s1 s2); MODES=(echo echo echo sink sink)
PORTS=(); BPIDS=()
for i in 0 1 2 3 4; do PORTS+=("$(pick_port)"); done
FE=$(pick_port); FS=$(pick_port); MP=$(pick_port)

write_config() { # FILE VARIANT(0|1): the variants differ in weights and timeouts
	local w=(1 2 3) ht=5s
	[ "$2" = 1 ] && { w=(3 2 1); ht=4s; }
	cat >"$1" <<CFG
[global]
workers = 2
log_level = info
access_log = $WORK/access.log
shutdown_timeout = 2s
metrics = 127.0.0.1:$MP

[frontend echo]
listen = 127.0.0.1:$FE
cert = cert.pem
key = key.pem
backend = echo
handshake_timeout = $ht

[frontend sink]
listen = 127.0.0.1:$FS
cert = cert.pem
key = key.pem
backend = sink
handshake_timeout = $ht

[backend echo]
server = 127.0.0.1:${PORTS[0]} weight=${w[0]}
server = 127.0.0.1:${PORTS[1]} weight=${w[1]}
server = 127.0.0.1:${PORTS[2]} weight=${w[2]}
connect_timeout = 1s
check_interval = 300ms
check_rise = 1
check_fall = 1

[backend sink]
server = 127.0.0.1:${PORTS[3]} weight=${w[0]}
server = 127.0.0.1:${PORTS[4]} weight=${w[1]}
connect_timeout = 1s
check_interval = 300ms
check_rise = 1
check_fall = 1
CFG
}

start_nth() { # I: (re)starts backend I
	start_backend "${NAMES[$1]}" "${MODES[$1]}" "${PORTS[$1]}" || return 1
	BPIDS[$1]=$LAST_PID
}
for i in 0 1 2 3 4; do start_nth "$i" || { tap_fail setup "backend ${NAMES[$i]} did not start"; exit 1; }; done
write_config "$WORK/variant0.ini" 0; write_config "$WORK/variant1.ini" 1
cp "$WORK/variant0.ini" "$WORK/proxy.ini"
start_proxy proxy "$WORK/proxy.ini" || { tap_fail setup "proxy did not start"; exit 1; }
P=$PROXY_PID
probe "$FE" 20 || { tap_fail setup "proxy does not relay"; exit 1; }
BASE_FDS=$(base_fds "$P")
log "proxy pid $P: $BASE_FDS fds, $(rss_kb "$P") KiB; soak of $SECS s"

start_sampler rss "$P"; SAMP=$LAST_PID
start_bg client "$T/tlsplice-abuse-soak" -p "$FE" -q "$FS" -c 16 -d "$SECS" -m 4M -s "$$"
CL=$LAST_PID
kills=0; reloads=0; variant=0
t_end=$(( $(date +%s) + SECS )); next_hup=$(( $(date +%s) + 3 ))
# Chaos while the clients stream: the sleeps set the pace of the attack, they synchronise
# nothing.
while kill -0 "$CL" 2>/dev/null && [ "$(date +%s)" -lt "$t_end" ]; do
	sleep "0.$((3 + RANDOM % 10))"
	i=$((RANDOM % 5))
	kill -KILL "${BPIDS[$i]}" 2>/dev/null && kills=$((kills + 1))
	wait "${BPIDS[$i]}" 2>/dev/null
	sleep "0.$((2 + RANDOM % 8))"
	start_nth "$i" || log "restart of ${NAMES[$i]} failed"
	if [ "$(date +%s)" -ge "$next_hup" ]; then
		variant=$((1 - variant))
		cp "$WORK/variant$variant.ini" "$WORK/proxy.ini"
		kill -HUP "$P" && reloads=$((reloads + 1))
		next_hup=$(( $(date +%s) + 2 + RANDOM % 3 ))
	fi
done
for i in $(seq $((SECS * 10 + 900))); do kill -0 "$CL" 2>/dev/null || break; sleep 0.1; done
wait "$CL"; crc=$?
r=$(result_of client); log "client: $r"
tail -5 "$WORK/client.err" >&2
bad=0; [ $crc = 0 ] || bad=1
[ "$(field "$r" corrupt)" = 0 ] && [ "$(field "$r" stalled)" = 0 ] || bad=1
tap_check soak-streams $bad "$SECS s, $kills backend kills, $reloads reloads: $(field "$r" streams) streams, $(field "$r" ok) intact (echo $(field "$r" echo_ok), sink $(field "$r" sink_ok)), $(field "$r" cut) cut by a killed backend, $(field "$r" corrupt) corrupt, $(field "$r" stalled) stalled; $(field "$r" mib_up) MiB up, $(field "$r" mib_down) MiB down"

applied=$(grep -c 'configuration reloaded' "$WORK/proxy.err")
tap_check soak-reloads "$([ "$applied" = "$reloads" ] && [ "$reloads" -gt 0 ]; echo $?)" "$applied of $reloads reloads applied"

n=$(wait_fds "$P" "$BASE_FDS" 20)
tap_check soak-fds "$([ "$n" -le "$BASE_FDS" ]; echo $?)" "proxy fds back to $n (baseline $BASE_FDS)"

kill "$SAMP" 2>/dev/null; wait "$SAMP" 2>/dev/null
# RSS at ten points of the run; flat = the last within the bound of the one at a quarter.
mapfile -t pts < <(awk '{print $1}' "$WORK/rss.out" | awk '{a[NR] = $1} END {for (i = 1; i <= 10; i++) print a[int(NR * i / 10)]}')
q=${pts[2]:-0}; e=${pts[9]:-0}
tap_check soak-rss "$([ $((e - q)) -le "$RSS_BOUND_KB" ]; echo $?)" "RSS KiB at each tenth: ${pts[*]} (end - quarter = $((e - q)), bound $RSS_BOUND_KB)"

stop_proxy "$P"; rc=$STOP_RC
bad=0; [ "$rc" = 0 ] || bad=1
sanitizer_clean "$WORK/proxy.err" || bad=1
tap_check soak-exit-clean $bad "proxy exit status $rc after SIGTERM, leak check and sanitizers clean"
[ $TAP_FAILED = 0 ]
