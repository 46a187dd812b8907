#!/usr/bin/env bash
# Instructions per TLS handshake of any proxy, under callgrind (repeatable on a shared host,
# where CPU time is not).
#
# The proxy runs twice under valgrind --tool=callgrind --trace-children=yes, serving N1 and
# then N2 full handshakes from tlsplice-loadgen (each with its 64-byte echo and the backend
# connect); it is stopped with SIGTERM so that every process writes its profile as it exits.
# The figure is (instructions of run 2 - instructions of run 1) / (N2 - N1), summed over all
# the proxy's processes: start-up, configuration and shutdown cancel out, and no profile has
# to be zeroed or dumped from outside (callgrind_control hung on nginx's worker and lost
# hitch's, both running as another user).
#
# Usage: tests/bench/hs_instr.sh -p PORT -l LOADGEN [-1 N1] [-2 N2] [-c CONC] [-o DIR] -- CMD...
#   PORT    the port CMD listens on (TLS 1.3, X25519, in front of an echo backend you run)
#   LOADGEN the tlsplice-loadgen binary (build/tests/bench/tlsplice-loadgen)
# Prints: "INSTR name=... n1=... n2=... per_hs=..." (name: the basename of CMD's first word).
set -uo pipefail

N1=100
N2=600
CONC=32
PORT=
LOADGEN=
OUT=
while getopts "p:l:1:2:c:o:" o; do
	case $o in
	p) PORT=$OPTARG ;;
	l) LOADGEN=$OPTARG ;;
	1) N1=$OPTARG ;;
	2) N2=$OPTARG ;;
	c) CONC=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) sed -n '2,15p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ "${1:-}" = -- ] && shift
if [ -z "$PORT" ] || [ ! -x "$LOADGEN" ] || [ $# -eq 0 ]; then
	sed -n '2,15p' "$0" >&2
	exit 2
fi
[ "$N2" -gt "$N1" ] || { echo "hs_instr: N2 must exceed N1" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "hs_instr: valgrind missing" >&2; exit 1; }
OUT=${OUT:-$(mktemp -d /tmp/hs_instr.XXXXXX)}
mkdir -p "$OUT"
chmod 777 "$OUT" # workers that drop privileges write their profiles here too

listening() { [ -n "$(ss -Htln "sport = :$PORT" 2>/dev/null)" ]; }

# run N: total instructions of every process of CMD over N handshakes (empty on failure).
run() {
	local n=$1 dir=$OUT/n$1 vp i res f sum=0
	shift
	rm -rf "$dir"
	mkdir -p "$dir"
	chmod 777 "$dir"
	listening && { echo "hs_instr: port $PORT is already in use" >&2; return 1; }
	valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/cg.%p" \
		"$@" >"$dir/log" 2>&1 &
	vp=$!
	for i in $(seq 300); do
		listening && break
		kill -0 "$vp" 2>/dev/null || break
		sleep 0.2
	done
	listening || { echo "hs_instr: nothing listens on $PORT (see $dir/log)" >&2; kill "$vp" 2>/dev/null; return 1; }
	res=$(timeout 600 "$LOADGEN" handshake -p "$PORT" -c "$CONC" -n "$n" -d 590)
	kill -TERM "$vp" 2>/dev/null
	wait "$vp"
	[[ $res == *status=ok* && $res == *" handshakes=$n "* ]] ||
		{ echo "hs_instr: loadgen: $res" >&2; return 1; }
	for f in "$dir"/cg.*; do
		# "summary:" (older callgrind) or "totals:" carries the Ir total of one process
		i=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
		sum=$((sum + ${i:-0}))
	done
	echo "$sum"
}

name=$(basename "$1")
i1=$(run "$N1" "$@") && [ -n "$i1" ] || exit 1
i2=$(run "$N2" "$@") && [ -n "$i2" ] || exit 1
echo "INSTR name=$name n1=$N1 n2=$N2 instr1=$i1 instr2=$i2 per_hs=$(((i2 - i1) / (N2 - N1)))"
