# The metrics-port attacks of scripts/abuse.sh (sourced). Needs P, MPORT, FPORT, BASE_FDS.
# shellcheck shell=bash

# Runs one attack with a good TLS round-trip client and an RSS/fd sampler around it.
# Sets A_RES (tool RESULT), A_RR (good client RESULT), A_PEAK ("RSS FDS"), A_CPU (s).
metrics_run() { # NAME TOOL-ARGS...
	local name=$1 rr_pid samp_pid c0 c1
	shift
	start_good "${name}_rr" rr "$FPORT"; rr_pid=$LAST_PID
	# the attack may end at once (a refusal): the good client is at work before it starts
	wait_line "$WORK/${name}_rr.out" '^FIRST' 30 || log "$name: good client made no round trip in 30 s"
	start_sampler "${name}_samp" "$P"; samp_pid=$LAST_PID
	c0=$(cpu_ticks "$P")
	"$T/tlsplice-abuse-http" "$@" -p "$MPORT" >"$WORK/$name.out" 2>"$WORK/$name.err"
	c1=$(cpu_ticks "$P")
	kill "$samp_pid" 2>/dev/null; wait "$samp_pid" 2>/dev/null
	stop_good "${name}_rr" "$rr_pid"; A_RR=$GOOD_RES
	A_RES=$(result_of "$name")
	A_PEAK=$(sampler_peak "${name}_samp")
	A_CPU=$(ticks_to_s $((${c1:-0} - ${c0:-0})))
	log "$name: $A_RES"; log "$name: good client $A_RR"; log "$name: peak rss/fds $A_PEAK, proxy cpu $A_CPU s"
}

rr_ok() { [ "$(field "$1" errors)" = 0 ] && [ "$(field "$1" requests)" -gt 0 ] 2>/dev/null; }
rr_desc() { echo "TLS round trips $(field "$1" requests), errors $(field "$1" errors), max $(awk -v u="$(field "$1" max_us)" 'BEGIN {printf "%.0f", u / 1000}') ms"; }

metrics_attacks() {
	local base_rss tr_pid bad delta lat r peak_fds st n
	base_rss=$(rss_kb "$P")
	"$T/tlsplice-abuse-http" trickle -p "$MPORT" -i 1 -t 25 >"$WORK/trickle.out" 2>"$WORK/trickle.err" &
	tr_pid=$!; STARTED+=("$tr_pid")

	metrics_run body body -b "$BODY" -t 90
	delta=$(( ${A_PEAK% *} - base_rss ))
	bad=0; [ "$delta" -le "$RSS_BOUND_KB" ] || bad=1; rr_ok "$A_RR" || bad=1
	kill -0 "$P" 2>/dev/null || bad=1
	tap_check metrics-body $bad "GET with Content-Length: 4000000000: sent $(field "$A_RES" sent_mib) MiB, ended $(field "$A_RES" how), status $(field "$A_RES" status); proxy RSS +$((delta / 1024)) MiB (bound $((RSS_BOUND_KB / 1024))); $(rr_desc "$A_RR")"

	metrics_run line line -b "$LINE" -t 90
	lat=$(awk -v u="$(field "$A_RR" max_us)" 'BEGIN {printf "%d", u / 1000}')
	bad=0; rr_ok "$A_RR" || bad=1; [ "$lat" -le "$LAT_BOUND_MS" ] || bad=1
	awk -v c="$A_CPU" 'BEGIN {exit !(c <= 1.0)}' || bad=1
	tap_check metrics-line $bad "$LINE request line: sent $(field "$A_RES" sent_mib) MiB, ended $(field "$A_RES" how), status $(field "$A_RES" status); proxy CPU $A_CPU s (bound 1.0); $(rr_desc "$A_RR") (bound $LAT_BOUND_MS)"

	metrics_run idle idle -n "$IDLE" -t 8
	peak_fds=${A_PEAK#* }
	bad=0; rr_ok "$A_RR" || bad=1; [ "$peak_fds" -le $((BASE_FDS + 64 + 4)) ] || bad=1
	tap_check metrics-idle $bad "$IDLE silent connections held 8 s: proxy fds peaked at $peak_fds (baseline $BASE_FDS, bound +68), $(field "$A_RES" closed_by_server) closed by the proxy (at $(field "$A_RES" close_min_s)..$(field "$A_RES" close_max_s) s), GET /metrics meanwhile: status $(field "$A_RES" probe_status) in $(field "$A_RES" probe_ms) ms; $(rr_desc "$A_RR")"

	for n in $(seq 300); do kill -0 "$tr_pid" 2>/dev/null || break; sleep 0.1; done
	wait "$tr_pid" 2>/dev/null
	r=$(result_of trickle); log "trickle: $r"
	tap_check metrics-trickle "$([ "$(field "$r" closed_by_server)" = 1 ]; echo $?)" "one header byte per second: closed by the proxy: $(field "$r" closed_by_server) after $(field "$r" at_s) s ($(field "$r" bytes_trickled) bytes; bound 25 s)"

	r=$("$T/tlsplice-abuse-http" get -p "$MPORT" -t 5 2>/dev/null); st=$?
	n=$(wait_fds "$P" "$BASE_FDS" 15)
	bad=0; [ $st = 0 ] || bad=1; [ "$n" -le "$BASE_FDS" ] || bad=1; kill -0 "$P" 2>/dev/null || bad=1
	tap_check metrics-after "$bad" "fresh GET /metrics: status $(field "$r" status) in $(field "$r" ms) ms; proxy fds back to $n (baseline $BASE_FDS)"
}
