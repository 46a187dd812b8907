# The RLIMIT_NOFILE=128 attack of scripts/abuse.sh (sourced): a second proxy whose fd limit
# is 128, 1,000 clients at once that each hold their connection for FLOOD_SECS.
# shellcheck shell=bash

emfile_attack() {
	local ep ef em cfg c0 c1 t0 t1 r pct down bad n rc reasons
	if ! command -v prlimit >/dev/null; then
		tap_skip emfile "prlimit (util-linux) is not installed"
		return
	fi
	ef=$(pick_port); em=$(pick_port)
	cfg=$WORK/emfile.ini
	sed -e "s/127.0.0.1:$FPORT/127.0.0.1:$ef/; s/127.0.0.1:$MPORT/127.0.0.1:$em/" \
	    -e "s#$WORK/access.log#$WORK/emfile-access.log#; s/check_interval = .*/check_interval = 200ms/" \
	    "$WORK/proxy.ini" >"$cfg"
	start_proxy emfile "$cfg" 128 || { tap_fail emfile "proxy with RLIMIT_NOFILE=128 did not start"; return; }
	ep=$PROXY_PID
	probe "$ef" 20 || { tap_fail emfile "proxy with RLIMIT_NOFILE=128 does not relay"; return; }
	local base; base=$(base_fds "$ep")
	c0=$(cpu_ticks "$ep"); t0=$(date +%s.%N)
	"$T/tlsplice-abuse-clients" flood -p "$ef" -n "$FLOOD" -d "$FLOOD_SECS" >"$WORK/flood.out" 2>"$WORK/flood.err"
	rc=$?
	c1=$(cpu_ticks "$ep"); t1=$(date +%s.%N)
	r=$(result_of flood); log "flood: $r"
	pct=$(awk -v c=$((c1 - c0)) -v h="$CLK_TCK" -v a="$t0" -v b="$t1" 'BEGIN {printf "%d", 100 * c / h / (b - a)}')
	tap_check emfile-no-spin "$([ "$pct" -le "$CPU_BOUND_PCT" ]; echo $?)" "RLIMIT_NOFILE=128, $FLOOD clients for $FLOOD_SECS s: proxy CPU $(ticks_to_s $((c1 - c0))) s = $pct% of one core (bound $CPU_BOUND_PCT%)"
	reasons=$(grep -o '"close":"[a-z_]*"' "$WORK/emfile-access.log" 2>/dev/null | sort | uniq -c | awk '{printf "%s%s=%s", s, $2, $1; s=","}' | tr -d '"' | sed 's/close://g')
	bad=0; [ $rc = 0 ] || bad=1
	tap_check emfile-clients $bad "served $(field "$r" served), waiting $(field "$r" waiting), ended in handshake $(field "$r" ended_in_handshake), ended before echo $(field "$r" ended_before_echo), refused $(field "$r" connect_failed), corrupt $(field "$r" corrupt); access log closes: ${reasons:-none}"
	local ns cf
	ns=$(grep -c '"close":"no_server"' "$WORK/emfile-access.log")
	cf=$(grep -c '"close":"connect_failed".*Too many open files' "$WORK/emfile-access.log")
	tap_check emfile-no-blame "$([ "$ns" = 0 ] && [ "$cf" = 0 ]; echo $?)" "clients turned away for the proxy's own fd shortage: no_server $ns, connect_failed (EMFILE) $cf"
	down=$(grep -c 'is DOWN' "$WORK/emfile.err")
	tap_check emfile-backend-up "$([ "$down" = 0 ]; echo $?)" "healthy backend logged DOWN $down times$( [ "$down" = 0 ] || echo ": $(grep -m1 'is DOWN' "$WORK/emfile.err" | sed 's/^.*backend/backend/')")"
	bad=0; probe "$ef" 15 || bad=1
	n=$(wait_fds "$ep" "$base" 15); [ "$n" -le "$base" ] || bad=1
	tap_check emfile-recovery $bad "a fresh client is served after the flood; proxy fds back to $n (baseline $base)"
	stop_proxy "$ep"; rc=$STOP_RC
	bad=0; [ "$rc" = 0 ] || bad=1
	sanitizer_clean "$WORK/emfile.err" || bad=1
	tap_check emfile-exit-clean $bad "RLIMIT_NOFILE=128 proxy: exit status $rc after SIGTERM, sanitizers clean"
}
