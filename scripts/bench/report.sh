# shellcheck shell=bash
# Sourced by scripts/bench.sh (its options and globals are set there).
# The report: the markdown table of every metric with its ratios, and the PNG chart.

# ---------------------------------------------------------------- report
# metric keys, headers, direction (+ higher is better, - lower is better)
METRICS=(bulk_mibs bulk_cpu hs_s hs_cpu rr_rps rr_p50 rr_p99 rr_p999 rr_cpu idle_kib)
RR_METRICS=(rps p50 p99 p999 cpu)
declare -A MHEAD=(
	[bulk_mibs]="bulk MiB/s" [bulk_cpu]="bulk CPU s/GiB"
	[hs_s]="handshakes/s" [hs_cpu]="CPU ms/1k hs"
	[rr_rps]="rr req/s" [rr_p50]="rr p50 µs" [rr_p99]="rr p99 µs" [rr_p999]="rr p999 µs"
	[rr_cpu]="CPU µs/req" [idle_kib]="KiB/idle conn")
declare -A MDIR=([bulk_mibs]=+ [bulk_cpu]=- [hs_s]=+ [hs_cpu]=- [rr_rps]=+ [rr_p50]=- [rr_p99]=-
	[rr_p999]=- [rr_cpu]=- [idle_kib]=-)
# the per-concurrency request/response metrics rank as their main-table columns
for c in $RR_C; do
	for m in "${RR_METRICS[@]}"; do MDIR[rr_${m}_$c]=${MDIR[rr_$m]}; done
done

# True when the phase that measures metric $1 was run (--phases).
phase_of() {
	case $1 in
	bulk_*) has_phase bulk ;;
	hs_*) has_phase hs ;;
	rr_*) has_phase rr ;;
	idle_*) has_phase idle ;;
	esac
}

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

# Request/response at every concurrency: rps, p50/p99/p999, CPU per request, each with its
# ratio to the best peer at that concurrency.
rr_table() {
	local p c m v b line
	echo "Request/response by concurrency (${RR_SIZE}-byte echo, ${RR_D}s each): req/s ↑, p50/p99/p999 µs ↓, CPU µs/req ↓ (ratio to the best peer)."
	echo
	echo "Last two columns (last round, tests/bench/tail.py): requests slower than p50 + 700 µs per"
	echo "1,000 that were left behind while the other connections kept moving (a cause in the proxy),"
	echo "and stalls where no connection moved (the host's scheduling, or a pause of a whole process)."
	echo "From about 64 connections up, the catch-up after each stall counts as left behind too."
	echo
	echo "| proxy | C | req/s | p50 µs | p99 µs | p999 µs | CPU µs/req | left behind /1k | stalls |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for c in $RR_C; do
		for p in "${PROXIES[@]}"; do
			line="| $p | $c |"
			for m in "${RR_METRICS[@]}"; do
				v=${R[$p.rr_${m}_$c]:-}; b=$(best_peer "rr_${m}_$c")
				if [ -z "$v" ]; then line+=" - |"
				elif [ -n "$b" ] && awk -v b="$b" 'BEGIN{exit !(b > 0)}'; then
					line+=" $v${R[$p.rr_${m}_$c.noisy]:-} ($(calc "$v / $b" 2)) |"
				else line+=" $v${R[$p.rr_${m}_$c.noisy]:-} |"
				fi
			done
			echo "$line ${R[$p.rr_behind_$c]:--} | ${R[$p.rr_stalls_$c]:--} |"
		done
	done
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
		[ ${#RT[@]} -gt 0 ] && echo "All of them SCHED_FIFO (--fifo): other work on the host does not preempt them; the kernel's real-time throttling pauses them 50 ms a second."
		echo "Best of $ROUNDS interleaved round(s). bulk: $BULK_C connections x $BULK_N each way (MiB/s counts both directions); handshake: $HS_C in flight for ${HS_D}s; rr: $(rr_main_c) connections (of $RR_C) x ${RR_SIZE}-byte echo for ${RR_D}s; idle: $IDLE_N connections."
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
				if [ -z "$v" ] && ! phase_of "$m"; then line+=" - |"
				elif [ -z "$v" ]; then line+=" failed |"
				elif [ -n "$b" ] && awk -v b="$b" 'BEGIN{exit !(b > 0)}'; then
					line+=" $v${R[$p.$m.noisy]:-} ($(calc "$v / $b" 2)) |"
				else line+=" $v${R[$p.$m.noisy]:-} |"
				fi
			done
			echo "$line"
		done
		has_phase rr && { echo; rr_table; }
		[ "$CROSSCHECK" = 1 ] && { echo; xc_table; }
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
