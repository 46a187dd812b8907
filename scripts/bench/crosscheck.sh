# shellcheck shell=bash
# Sourced by scripts/bench.sh (its options and globals are set there).
# --crosscheck: the load generator's figures against clients that share none of its code.
#   request/response: tests/bench/rrclient.py (Python's ssl module) at 1 and 16 connections;
#   handshakes: openssl s_time -new (one connection at a time).
# What must agree is what the proxy spends: its CPU per request and per handshake, read from
# /proc as for the timed phases, does not depend on which client asks. Rates and latencies do
# (a Python client is slower than the proxy it measures), so they are shown, not compared.

XC_D=${BENCH_XC_D:-4}
XC_C="1 16"

# xc_run PROXY PID NAME CMD...: runs CMD on the load core; sets XC_OUT and XC_TICKS.
xc_run() {
	local proxy=$1 pid=$2 name=$3 t0 t1 out=$WORK/$1-xc-$3.out
	shift 3
	wait_quiet
	t0=$(tree_ticks "$pid")
	timeout -k 5 "$((XC_D + 30))" "${RT[@]}" taskset -c "$LOAD_CORE" "$@" >"$out" 2>>"$WORK/xc.err"
	t1=$(tree_ticks "$pid")
	XC_TICKS=$((t1 - t0))
	XC_OUT=$(cat "$out")
}

crosscheck() {
	local proxy=$1 pid=$2 c n
	command -v python3 >/dev/null || { log "python3 missing: no cross-check"; return 1; }
	for c in $XC_C; do
		xc_run "$proxy" "$pid" "rr$c" python3 "$ROOT/tests/bench/rrclient.py" -p "$FPORT" \
			-c "$c" -s "$RR_SIZE" -d "$XC_D"
		local res
		res=$(grep '^RESULT' <<<"$XC_OUT" | tail -1)
		log "$proxy python rr c=$c: ${res:-no result} cpu=$(calc "$XC_TICKS / $CLK_TCK" 2)s"
		n=$(kv "$res" requests)
		[ "${n:-0}" -gt 0 ] || continue
		R[$proxy.xc_rps_$c]=$(kv "$res" rps)
		R[$proxy.xc_p50_$c]=$(kv "$res" p50_us)
		R[$proxy.xc_p99_$c]=$(kv "$res" p99_us)
		R[$proxy.xc_cpu_$c]=$(calc "1000000 * ($XC_TICKS / $CLK_TCK) / $n" 2)
	done
	xc_run "$proxy" "$pid" hs openssl s_time -connect "127.0.0.1:$FPORT" -new -tls1_3 \
		-ciphersuites TLS_AES_128_GCM_SHA256 -time "$XC_D"
	# "N connections in T real seconds, ..."
	n=$(awk '/connections in [0-9.]+ real seconds/ { print $1; exit }' <<<"$XC_OUT")
	log "$proxy s_time: ${n:-no} handshakes cpu=$(calc "$XC_TICKS / $CLK_TCK" 2)s"
	[ "${n:-0}" -gt 0 ] || return 1
	R[$proxy.xc_hs_s]=$(calc "$n / $XC_D" 1)
	R[$proxy.xc_hs_cpu]=$(calc "1000 * 1000 * ($XC_TICKS / $CLK_TCK) / $n" 1)
}

# ratio A B: A / B with two decimals, or "-" when either is missing.
xc_ratio() {
	if [ -n "$1" ] && [ -n "$2" ] && awk -v b="$2" 'BEGIN { exit !(b > 0) }'; then
		calc "$1 / $2" 2
	else
		echo -
	fi
}

xc_table() {
	local p c
	echo "Cross-check (--crosscheck, last round): the proxy's CPU per request and per handshake"
	echo "measured under the load generator and under independent clients (tests/bench/rrclient.py,"
	echo "Python's ssl module; openssl s_time -new, one connection at a time). The CPU columns must"
	echo "agree (ratio near 1); rates and latencies are the clients' own and differ with their speed."
	echo
	echo "| proxy | C | loadgen req/s | python req/s | loadgen p50 µs | python p50 µs | loadgen CPU µs/req | python CPU µs/req | ratio |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for c in $XC_C; do
		for p in "${PROXIES[@]}"; do
			echo "| $p | $c | ${R[$p.rr_rps_$c]:--} | ${R[$p.xc_rps_$c]:--} | ${R[$p.rr_p50_$c]:--} | ${R[$p.xc_p50_$c]:--} | ${R[$p.rr_cpu_$c]:--} | ${R[$p.xc_cpu_$c]:--} | $(xc_ratio "${R[$p.xc_cpu_$c]:-}" "${R[$p.rr_cpu_$c]:-}") |"
		done
	done
	echo
	echo "| proxy | loadgen hs/s ($HS_C in flight) | s_time hs/s (1) | loadgen CPU ms/1k hs | s_time CPU ms/1k hs | ratio |"
	echo "|---|---:|---:|---:|---:|---:|"
	for p in "${PROXIES[@]}"; do
		echo "| $p | ${R[$p.hs_s]:--} | ${R[$p.xc_hs_s]:--} | ${R[$p.hs_cpu]:--} | ${R[$p.xc_hs_cpu]:--} | $(xc_ratio "${R[$p.xc_hs_cpu]:-}" "${R[$p.hs_cpu]:-}") |"
	done
}
