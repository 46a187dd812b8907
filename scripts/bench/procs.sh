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

forget_pid() {
	local p keep=()
	for p in "${STARTED[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	STARTED=("${keep[@]}")
}
