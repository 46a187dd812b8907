# Shell helpers for scripts/abuse.sh, scripts/soak.sh and scripts/scale.sh: TAP output,
# process tracking with cleanup, free ports, certificates, starting the proxy and backends,
# and readers of /proc (fds, RSS, CPU). Sourced, never run.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TAP_N=0
TAP_FAILED=0
STARTED=()          # every pid we started; cleanup stops what is still running
WORK=
CLK_TCK=$(getconf CLK_TCK)
KEEP_WORK=${ABUSE_KEEP_WORK:-0}

log() { printf '[%s %s] %s\n' "$TOOL" "$(date -u +%H:%M:%S)" "$*" >&2; }
tap_ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - abuse:$1${2:+ $2}"; log "ok: $1 $2"; }
tap_fail() {
	TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - abuse:$1${2:+ $2}"; log "FAIL: $1 $2"
}
tap_skip() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - abuse:$1 # SKIP $2"; log "skip: $1 $2"; }
# tap_check NAME CONDITION-STATUS DETAILS: ok when the status is 0.
tap_check() { if [ "$2" = 0 ]; then tap_ok "$1" "$3"; else tap_fail "$1" "$3"; fi; }

# Stops one pid: TERM, up to 5 s, then KILL.
stop_pid() {
	local p=$1 i
	kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null; return 0; }
	kill -TERM "$p" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	return 0
}

cleanup() {
	local p
	for p in "${STARTED[@]}"; do
		stop_pid "$p"
	done
	STARTED=()
	if [ -n "$WORK" ] && [ "$KEEP_WORK" != 1 ]; then
		rm -rf "$WORK"
	fi
}

# The scripts' shared options: --build-dir DIR (default $2), --long, --seconds N (default $3,
# soak only), -h. Sets BUILD (absolute), LONG and SECS; returns 2 on a usage error.
lib_args() { # NAME DEFAULT-BUILD DEFAULT-SECONDS ARGS...
	local name=$1
	BUILD=$2 SECS=$3 LONG=0
	shift 3
	while [ $# -gt 0 ]; do
		case $1 in
		--build-dir) BUILD=$2; shift ;;
		--build-dir=*) BUILD=${1#*=} ;;
		--long) LONG=1 ;;
		--seconds) SECS=$2; shift ;;
		--seconds=*) SECS=${1#*=} ;;
		-h|--help) sed -n '2,16p' "scripts/$name.sh" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) echo "$name.sh: unknown option '$1'" >&2; return 2 ;;
		esac
		shift
	done
	case $SECS in ''|*[!0-9]*|0) echo "$name.sh: bad --seconds" >&2; return 2 ;; esac
	case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
}

lib_init() { # TOOL-NAME
	TOOL=$1
	trap cleanup EXIT
	trap 'log "interrupted"; exit 130' INT TERM HUP
	WORK=$(mktemp -d "/tmp/tlsplice-$TOOL.XXXXXX")
	log "work dir $WORK"
}

# Runs "$@" in the background, stdout to $1.out, stderr to $1.err in WORK; pid in LAST_PID.
start_bg() {
	local name=$1
	shift
	"$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	LAST_PID=$!
	STARTED+=("$LAST_PID")
}

# Is TCP port $1 listening or bound on 127.0.0.1/any (IPv4 or IPv6)?
port_used() {
	local hex
	hex=$(printf ':%04X ' "$1")
	grep -qi "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# A free port below the ephemeral range, never handed out twice in one run. Callers use
# $(pick_port), a subshell, so the ports handed out are kept in a file of the work dir.
pick_port() {
	local p i picked=$WORK/picked-ports
	for i in $(seq 200); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
		grep -qx "$p" "$picked" 2>/dev/null && continue
		port_used "$p" && continue
		echo "$p" >>"$picked"
		echo "$p"
		return 0
	done
	return 1
}

make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=localhost -addext subjectAltName=DNS:localhost \
		-keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1
}

# Waits until file $1 contains a line matching $2, at most $3 seconds. Polls the file the
# process writes: the line is the event.
wait_line() {
	local f=$1 re=$2 secs=$3 i
	for i in $(seq $((secs * 20))); do
		grep -q -- "$re" "$f" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# start_backend NAME MODE PORT: a tlsplice-testbackend; its pid in LAST_PID.
start_backend() {
	start_bg "$1" "$BUILD/tests/tools/tlsplice-testbackend" --listen "127.0.0.1:$3" --mode "$2" --name "$1"
	wait_line "$WORK/$1.out" '^listening on' 10 || { log "backend $1 did not start"; cat "$WORK/$1.err" >&2; return 1; }
}

# start_proxy NAME CONFIG [NOFILE]: the proxy under test; pid in PROXY_PID, stderr in
# WORK/NAME.err. With NOFILE, its RLIMIT_NOFILE (soft and hard) is set to it.
start_proxy() {
	local name=$1 cfg=$2 nofile=${3:-}
	if [ -n "$nofile" ]; then
		start_bg "$name" prlimit --nofile="$nofile:$nofile" "$BUILD/src/tlsplice" -c "$cfg"
	else
		start_bg "$name" "$BUILD/src/tlsplice" -c "$cfg"
	fi
	PROXY_PID=$LAST_PID
	if ! wait_line "$WORK/$name.err" ' started' 30; then
		log "proxy $name did not start"
		tail -20 "$WORK/$name.err" >&2
		return 1
	fi
}

# stop_proxy PID: SIGTERM, wait (bounded, then SIGKILL); the exit status in STOP_RC.
# Not in a subshell: only the parent shell can reap its child.
stop_proxy() {
	local p=$1 i
	kill -TERM "$p" 2>/dev/null
	for i in $(seq 300); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$p" 2>/dev/null && kill -KILL "$p"
	wait "$p"
	STOP_RC=$?
}

# Sanitizer reports in a stderr file: prints the first lines of any, returns 1 when found.
sanitizer_clean() {
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Leak|Undefined)' "$1"; then
		grep -E -m5 'ERROR: |runtime error:|SUMMARY: ' "$1" >&2
		return 1
	fi
	return 0
}

# The baseline fd count: the least of 10 samples over half a second, so that a health check
# in flight at one instant does not raise it.
base_fds() {
	local p=$1 i n m=
	for i in $(seq 10); do
		n=$(fd_count "$p")
		{ [ -z "$m" ] || [ "$n" -lt "$m" ]; } && m=$n
		sleep 0.05
	done
	echo "$m"
}
fd_count() { local n; n=$(ls "/proc/$1/fd" 2>/dev/null | wc -l); echo "${n:-0}"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# utime+stime of a process (all threads) in clock ticks.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }
ticks_to_s() { awk -v t="$1" -v h="$CLK_TCK" 'BEGIN {printf "%.2f", t / h}'; }

# Waits until PID's fd count is at most $2, for up to $3 seconds; prints the last count, or
# "gone" when the process has died (which fails any numeric comparison).
wait_fds() {
	local p=$1 base=$2 secs=$3 i n
	for i in $(seq $((secs * 10))); do
		[ -d "/proc/$p/fd" ] || { echo gone; return; }
		n=$(fd_count "$p")
		[ "$n" -le "$base" ] && break
		sleep 0.1
	done
	echo "$n"
}

# field LINE KEY: the value of KEY=VALUE in a RESULT line.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -1; }

# The RESULT line of a tool's output file.
result_of() { grep -m1 '^RESULT' "$WORK/$1.out" 2>/dev/null; }

# A good TLS client in the background: loadgen MODE (rr or handshake), one connection.
start_good() { # NAME MODE PORT
	start_bg "$1" "$BUILD/tests/bench/tlsplice-loadgen" "$2" -p "$3" -c 1 -d 600 -S localhost
}
# Stops a good client; its RESULT line in GOOD_RES. Not in a subshell, so that it is reaped.
stop_good() { # NAME PID
	local i
	kill -TERM "$2" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	wait "$2" 2>/dev/null
	GOOD_RES=$(result_of "$1")
}
# Samples RSS (KiB) and fds of PID every 0.1 s into WORK/NAME.samples until killed.
start_sampler() { # NAME PID
	local pid=$2
	start_bg "$1" bash -c "while kill -0 $pid 2>/dev/null; do
		echo \"\$(awk '/^VmRSS:/ {print \$2}' /proc/$pid/status) \$(ls /proc/$pid/fd | wc -l)\"
		sleep 0.1; done"
}
# Peak RSS and fds of a sampler's file: "RSS FDS".
sampler_peak() { awk 'BEGIN {r = 0; f = 0} $1 > r {r = $1} $2 > f {f = $2} END {print r, f}' "$WORK/$1.out"; }

probe() { # PORT [SECS]: one handshake + echo, retried until it works
	"$BUILD/tests/bench/tlsplice-loadgen" probe -p "$1" -d "${2:-10}" -S localhost >/dev/null 2>&1
}
