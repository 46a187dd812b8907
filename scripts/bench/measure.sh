# shellcheck shell=bash
# Sourced by scripts/bench.sh (its options and globals are set there).
# Measuring: CPU and RSS of a process tree, the four load phases, one proxy end to end,
# and the OpenSSL speed floors.

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
	timeout -k 5 "$((d + 30))" "${RT[@]}" taskset -c "$LOAD_CORE" "$LOADGEN" "$@" >"$out" 2>>"$WORK/loadgen.err" &
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

# The concurrency of the main table's rr columns: 16 if measured, else the first.
rr_main_c() {
	local c
	for c in $RR_C; do [ "$c" = 16 ] && { echo 16; return; }; done
	echo "${RR_C%% *}"
}

# One request/response run at C connections; per-C metrics rr_*_C, and the main table's
# rr_* at rr_main_c.
measure_rr_at() {
	local proxy=$1 pid=$2 c=$3 n m v sfx tail trace=$WORK/$proxy-rr$c.trace
	phase "$proxy" "$pid" rr "$RR_D" rr -p "$FPORT" -c "$c" -s "$RR_SIZE" -d "$RR_D" -T "$trace" ||
		{ NOTE[$proxy]+="rr c=$c: $(status_of "$RES"); "; [ -n "$RES" ] || return 1; }
	n=$(kv "$RES" requests)
	[ "${n:-0}" -gt 0 ] || return 1
	# where the tail comes from (tests/bench/tail.py): this round's figures, not the best
	tail=$(python3 "$ROOT/tests/bench/tail.py" "$trace" 2>/dev/null)
	R[$proxy.rr_behind_$c]=$(kv "$tail" left_behind_per_k)
	R[$proxy.rr_stalls_$c]=$(kv "$tail" stall_events)
	log "$proxy rr c=$c: $tail"
	rm -f "$trace"
	for sfx in "_$c" $([ "$c" = "$(rr_main_c)" ] && echo "-"); do
		[ "$sfx" = - ] && sfx=
		for m in rps p50 p99 p999; do
			v=$(kv "$RES" "$m$([ "$m" = rps ] || echo _us)")
			put "$proxy" "rr_$m$sfx" "$v" rr
		done
		put "$proxy" "rr_cpu$sfx" "$(calc "1000000 * ($TICKS / $CLK_TCK) / $n" 2)" rr
		put "$proxy" "rr_busy$sfx" "$(calc "100 * ($TICKS / $CLK_TCK) / $(kv "$RES" secs)" 0)" rr
	done
}

measure_rr() {
	local proxy=$1 pid=$2 c ok=0
	for c in $RR_C; do
		measure_rr_at "$proxy" "$pid" "$c" && ok=1
	done
	[ "$ok" = 1 ]
}

# Opens IDLE_N connections, reads RSS when the loadgen says all are up.
measure_idle() {
	local proxy=$1 pid=$2 rss0 rss1 line="" res="" lpid fifo=$WORK/idle.fifo fd
	rss0=$(tree_rss "$pid")
	rm -f "$fifo"
	mkfifo "$fifo"
	exec {fd}<>"$fifo"   # read-write: never blocks, and keeps what the loadgen wrote
	timeout -k 5 "$((IDLE_T + 30))" "${RT[@]}" taskset -c "$LOAD_CORE" "$LOADGEN" idle \
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
	local kind
	kind=$(kind_of "$proxy")
	bin=$(binary_for "$proxy")
	if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "$bin" ]; then
		NOTE[$proxy]="not installed/built ($bin)"
		log "$proxy: ${NOTE[$proxy]}"
		return 1
	fi
	pick_ports $((PORT_BASE + 10 * idx)) || { NOTE[$proxy]+="no free ports; "; return 1; }
	R[$proxy.version]=$(version_of "$proxy")
	"cfg_$kind" "$FPORT" "$BPORT"
	cmd=$("cmd_$kind" "$proxy")
	envv=$(env_for "$proxy")
	start_bg "$LOAD_CORE" "$WORK/$proxy-backend.log" "$BENCHSRV" -l "127.0.0.1:$BPORT" -m echo -d 3600
	bpid=$LAST_PID
	# shellcheck disable=SC2086
	start_bg "$PROXY_CORE" "$WORK/$proxy.log" env "$envv" $cmd
	ppid=$LAST_PID
	log "$proxy: started pid $ppid on 127.0.0.1:$FPORT -> $BPORT: $cmd"
	if ! "${RT[@]}" taskset -c "$LOAD_CORE" "$LOADGEN" probe -p "$FPORT" -d 10 >"$WORK/$proxy-probe.txt" 2>&1; then
		NOTE[$proxy]+="does not serve (see $WORK/$proxy.log); "
		log "$proxy: does not serve: $(tail -3 "$WORK/$proxy.log" | tr '\n' ' ')"
		stop_tree "$ppid"; forget_pid "$ppid"
		stop_tree "$bpid"; forget_pid "$bpid"
		return 1
	fi
	[ -z "$(pin_tree "$ppid" "$proxy" "$PROXY_CORE")" ] || [[ ${NOTE[$proxy]:-} == *re-pinned* ]] ||
		NOTE[$proxy]+="re-pinned to core $PROXY_CORE; "
	has_phase bulk && { measure_bulk "$proxy" "$ppid" || log "$proxy: bulk failed"; }
	has_phase hs && { measure_hs "$proxy" "$ppid" || log "$proxy: handshake failed"; }
	has_phase rr && { measure_rr "$proxy" "$ppid" || log "$proxy: rr failed"; }
	has_phase idle && { measure_idle "$proxy" "$ppid" || log "$proxy: idle failed"; }
	[ "$CROSSCHECK" = 1 ] && { crosscheck "$proxy" "$ppid" || log "$proxy: cross-check failed"; }
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
