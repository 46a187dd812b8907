# shellcheck shell=bash
# Sourced by scripts/bench.sh (its options and globals are set there).
# Process bookkeeping: every process the benchmark starts, pinned to a core, and
# stopped with its whole tree on exit.

# ---------------------------------------------------------------- cleanup
STARTED=()          # pids this script started (each a process-tree root)
POLICY_CREATED=0

# Prints the pids of ROOT and all its descendants.
tree_pids() {
	ps -e -o pid=,ppid= 2>/dev/null | awk -v r="$1" '
		{ par[$1] = $2; all[NR] = $1 }
		END {
			inset[r] = 1; grow = 1
			while (grow) {
				grow = 0
				for (i in all) {
					p = all[i]
					if (!(p in inset) && (par[p] in inset)) { inset[p] = 1; grow = 1 }
				}
			}
			for (p in inset) print p
		}'
}

# Stops a process tree: TERM, up to 5 s for it to go, then KILL.
stop_tree() {
	local root=$1 pids i
	kill -0 "$root" 2>/dev/null || { wait "$root" 2>/dev/null; return 0; }
	pids=$(tree_pids "$root")
	# shellcheck disable=SC2086  # a list of pids
	kill -TERM $pids 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$root" 2>/dev/null || break
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
	wait "$root" 2>/dev/null
	return 0
}

cleanup() {
	local p
	for p in "${STARTED[@]}"; do
		stop_tree "$p"
	done
	STARTED=()
	if [ "$POLICY_CREATED" = 1 ]; then
		rm -f /usr/sbin/policy-rc.d
		POLICY_CREATED=0
	fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

# Runs "$@" in the background on core CORE; the pid goes to STARTED and $LAST_PID.
start_bg() {
	local core=$1 logf=$2
	shift 2
	"${RT[@]}" taskset -c "$core" "$@" >"$logf" 2>&1 &
	LAST_PID=$!
	STARTED+=("$LAST_PID")
}

# pin_tree ROOT NAME CORE: some proxies set their workers' affinity themselves (hitch puts its
# worker N on CPU N, so its one worker left the proxy core for the load core, where waking the
# client and the backend costs no cross-CPU wake-up): pin every thread of the tree back to CORE.
# Prints the threads that had moved.
pin_tree() {
	local root=$1 p t want moved=
	want=$(printf '%x' $((1 << $3)))
	for p in $(tree_pids "$root"); do
		for t in /proc/"$p"/task/*; do
			t=${t##*/}
			[ "$(taskset -p "$t" 2>/dev/null | awk '{ print $NF }')" = "$want" ] && continue
			taskset -p -c "$3" "$t" >/dev/null 2>&1 && moved+="$t "
		done
	done
	[ -z "$moved" ] || log "$2: threads ${moved}had left core $3 (the proxy sets its own affinity): pinned back"
	echo "$moved"
}

forget_pid() {
	local p keep=()
	for p in "${STARTED[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	STARTED=("${keep[@]}")
}
