#!/bin/bash
# What kernel TLS + splice saves, measured inside the kTLS VM (scripts/vmtest.sh): the same
# boot runs the proxy twice, once with `ktls = auto` (both directions in the kernel, relay
# splice) and once with `ktls = off` (OpenSSL in user space), in front of the same echo
# backend, driven by tlsplice-loadgen (TLS 1.3, TLS_AES_128_GCM_SHA256, one proxy worker,
# one bulk connection at a time; the CPU figures include that connection's handshake).
#
#   scripts/bench_ktls.sh [--build-dir DIR] [--bulk-mib N] [--strace-mib N] [--idle N]
#                         [--memory SIZE] [--out FILE]
#
# Per path it reports:
#   user CPU s/GiB   proxy utime (/proc/PID/stat) over a bulk transfer, per GiB relayed
#                    (bytes counted once per direction: client->backend plus backend->client)
#   sys CPU s/GiB    the same for stime (kernel work done on the proxy's behalf)
#   syscalls/MiB     `strace -c -f -p PID` over a second bulk transfer, all threads
#   RSS B/idle conn  RssAnon (/proc/PID/status) with N idle TLS connections minus before, / N
# qemu runs under TCG here, so wall-clock speed means nothing and is not reported.
# Output: a markdown table on stdout (and in --out FILE). Exit 1 if the VM run failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$ROOT/build
BULK_MIB=512    # relayed per path for CPU (half each way)
STRACE_MIB=128  # relayed per path under strace
IDLE_N=3000
MEMORY=2048M
OUT=

usage() { sed -n '7,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
	case $1 in
	--build-dir) BUILD_DIR=$(cd "$2" && pwd); shift 2 ;;
	--bulk-mib) BULK_MIB=$2; shift 2 ;;
	--strace-mib) STRACE_MIB=$2; shift 2 ;;
	--idle) IDLE_N=$2; shift 2 ;;
	--memory) MEMORY=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h|--help) usage ;;
	*) echo "bench_ktls: unknown option $1" >&2; usage ;;
	esac
done

LOADGEN=$BUILD_DIR/tests/bench/tlsplice-loadgen
BENCHSRV=$BUILD_DIR/tests/bench/tlsplice-benchsrv
STRACE=$(command -v strace || true)
for f in "$BUILD_DIR/src/tlsplice" "$LOADGEN" "$BENCHSRV"; do
	[ -x "$f" ] || { echo "bench_ktls: missing $f (ninja -C $BUILD_DIR)" >&2; exit 2; }
done
[ -n "$STRACE" ] || { echo "bench_ktls: strace not installed (apt-get install strace)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench_ktls.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=localhost -addext subjectAltName=DNS:localhost \
	-keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

# The program that runs inside the VM (busybox sh). It prints "BENCH path key=value ..."
# lines; everything else is commentary.
cat > "$WORK/bench-ktls-vm" <<'VMEOF'
#!/bin/sh
F=/opt/files
BULK_MIB=@BULK_MIB@ STRACE_MIB=@STRACE_MIB@ IDLE_N=@IDLE_N@
ulimit -n 65536 || echo "bench: cannot raise the fd limit" >&2
fail() { echo "BENCH-FAIL $*"; exit 1; }

# field N (1-based) of /proc/PID/stat, counted after the ")" that ends the command name
stat_field() { sed 's/.*) //' /proc/$1/stat | awk -v n=$(($2 - 2)) '{ print $n }'; }
rss_anon() { awk '/^RssAnon:/ { print $2 }' /proc/$1/status; }

# waits (bounded) until every thread of $1 is traced
wait_traced() {
	i=0
	while [ $i -lt 200 ]; do
		n=0
		for t in /proc/$1/task/*; do
			[ "$(awk '/^TracerPid:/ { print $2 }' $t/status)" = 0 ] && n=$((n + 1))
		done
		[ $n = 0 ] && return 0
		i=$((i + 1)); sleep 0.05
	done
	return 1
}

# waits (bounded) until file $1 has a line starting with $2
wait_line() {
	i=0
	while [ $i -lt 6000 ]; do
		grep -q "^$2" "$1" 2>/dev/null && return 0
		i=$((i + 1)); sleep 0.1
	done
	return 1
}

loadgen() { $F/tlsplice-loadgen "$@" -p 8443 -S localhost; }

$F/tlsplice-benchsrv -l 127.0.0.1:9000 -m echo -d 3000 2>/tmp/benchsrv.err &
SRV=$!

run_path() {
	name=$1 ktls=$2
	cat > /tmp/$name.ini <<EOF
[global]
workers = 1
access_log = off
log_level = warn
ktls = $ktls
max_connections = 100000
[frontend bench]
listen = 127.0.0.1:8443
cert = $F/cert.pem
key = $F/key.pem
backend = echo
idle_timeout = 30m
session_tickets = off
[backend echo]
server = 127.0.0.1:9000
check = none
EOF
	/opt/tlsplice/tlsplice -c /tmp/$name.ini 2>/tmp/$name.err &
	P=$!
	loadgen probe -d 60 >/tmp/$name.probe || fail "$name: proxy not up: $(cat /tmp/$name.err)"
	# warm-up: pools and allocator arenas reach their working size
	loadgen bulk -c 1 -n 4M -d 600 | grep -q 'status=ok' || fail "$name: warm-up"

	# One connection per transfer: loadgen's bulk mode drives a connection for as long as it
	# makes progress, so with several, the first can starve the others' handshakes.
	bulk_each=$((BULK_MIB / 2))
	u0=$(stat_field $P 14) s0=$(stat_field $P 15)
	r=$(loadgen bulk -c 1 -n ${bulk_each}M -d 1500)
	u1=$(stat_field $P 14) s1=$(stat_field $P 15)
	echo "$r" | grep -q 'status=ok' || fail "$name: bulk: $r"
	echo "BENCH $name cpu mib=$BULK_MIB utime_ticks=$((u1 - u0)) stime_ticks=$((s1 - s0))"

	# what one handshake costs the proxy, to read the bulk figure with (it includes one)
	u0=$(stat_field $P 14)
	r=$(loadgen handshake -c 1 -n 20 -d 600)
	u1=$(stat_field $P 14)
	echo "$r" | grep -q 'status=ok' || fail "$name: handshakes: $r"
	echo "BENCH $name handshake n=20 utime_ticks=$((u1 - u0))"

	strace_each=$((STRACE_MIB / 2))
	LD_LIBRARY_PATH=$F/lib $F/strace -c -f -p $P -o /tmp/$name.strace 2>/tmp/$name.strace.err &
	ST=$!
	wait_traced $P || fail "$name: strace did not attach"
	r=$(loadgen bulk -c 1 -n ${strace_each}M -d 1500)
	kill -INT $ST; wait $ST
	echo "$r" | grep -q 'status=ok' || fail "$name: bulk under strace: $r"
	calls=$(awk '$NF == "total" { print $4 }' /tmp/$name.strace)
	cg=$(awk '$NF == "clock_gettime" { print $4 }' /tmp/$name.strace)
	echo "BENCH $name syscalls mib=$STRACE_MIB calls=$calls clock_gettime=${cg:-0}"
	awk '$NF != "total" && NF >= 5 && $4 ~ /^[0-9]+$/ { print $4, $NF }' /tmp/$name.strace |
		sort -n -r | head -n 5 | while read -r n sc; do echo "BENCH-TOP $name $sc $n"; done

	# how many bytes each splice moved: one TLS record (<= 16 KiB) per call out of an RX socket
	if [ $name = splice ]; then
		LD_LIBRARY_PATH=$F/lib $F/strace -f -e trace=splice -e signal=none -qq -p $P \
			-o /tmp/$name.splices 2>/dev/null &
		ST=$!
		wait_traced $P || fail "$name: strace did not attach"
		loadgen bulk -c 1 -n 4M -d 600 >/dev/null
		kill -INT $ST; wait $ST
		awk '/^[0-9]+ +splice\(/ { n = $NF; if (n ~ /^[0-9]+$/) {
			b = n <= 16384 ? "le16k" : n <= 32768 ? "le32k" : "gt32k"; c[b]++; t[b] += n } }
			END { for (b in c) printf "BENCH-SPLICE %s calls=%d bytes=%d\n", b, c[b], t[b] }' \
			/tmp/$name.splices | sort
	fi

	rss0=$(rss_anon $P)
	loadgen idle -n $IDLE_N -c 64 -d 1200 >/tmp/$name.idle 2>/tmp/$name.idle.err &
	LG=$!
	wait_line /tmp/$name.idle READY || fail "$name: idle connections not up: $(tail -n 3 /tmp/$name.idle.err)"
	rss1=$(rss_anon $P)
	nfd=$(ls /proc/$P/fd | wc -l)
	echo "BENCH $name idle n=$IDLE_N rss0_kib=$rss0 rss1_kib=$rss1 fds=$nfd"
	kill -TERM $LG; wait $LG
	kill -TERM $P; wait $P
}

echo "BENCH-INFO clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
run_path splice auto
run_path userspace off
kill -TERM $SRV; wait $SRV
echo "BENCH-DONE"
VMEOF
sed -i -e "s/@BULK_MIB@/$BULK_MIB/" -e "s/@STRACE_MIB@/$STRACE_MIB/" -e "s/@IDLE_N@/$IDLE_N/" \
	"$WORK/bench-ktls-vm"
chmod 755 "$WORK/bench-ktls-vm"

# strace's own libraries go where its ld.so looks for them (LD_LIBRARY_PATH above).
FILES=(--file "$LOADGEN" --file "$BENCHSRV" --file "$STRACE" --file "$WORK/cert.pem"
	--file "$WORK/key.pem")
while IFS= read -r lib; do
	FILES+=(--file "$lib:/opt/files/lib/$(basename "$lib")")
done < <(ldd "$STRACE" | awk '/=> \// { print $3 }')

rc=0
VMTEST_MEMORY=$MEMORY "$ROOT/scripts/vmtest.sh" --build-dir "$BUILD_DIR" --timeout 3000 \
	"${FILES[@]}" "$WORK/bench-ktls-vm" > "$WORK/tap" 2> "$WORK/log" || rc=$?
tr -d '\r' < "$WORK/log" | grep '^BENCH' > "$WORK/bench" || true
if ! grep -q '^BENCH-DONE' "$WORK/bench"; then
	echo "bench_ktls: the VM run did not finish:" >&2
	cat "$WORK/tap" >&2
	tail -n 40 "$WORK/log" >&2
	exit 1
fi

# key=value of line "BENCH PATH WHAT ..."
val() { awk -v p="$1" -v w="$2" -v k="$3" '$1 == "BENCH" && $2 == p && $3 == w {
	for (i = 4; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$WORK/bench"; }

table() {
	local p
	echo "| path | user CPU s/GiB | sys CPU s/GiB | syscalls/MiB | syscalls/MiB without clock_gettime | RSS B/idle conn |"
	echo "|---|---:|---:|---:|---:|---:|"
	for p in splice userspace; do
		echo "$p $(val $p cpu mib) $(val $p cpu utime_ticks) $(val $p cpu stime_ticks)" \
			"$(val $p syscalls mib) $(val $p syscalls calls) $(val $p syscalls clock_gettime)" \
			"$(val $p idle n) $(val $p idle rss0_kib) $(val $p idle rss1_kib)"
	done | awk '{
		p[NR] = $1; u[NR] = $3 / 100 / ($2 / 1024); s[NR] = $4 / 100 / ($2 / 1024)
		c[NR] = $6 / $5; cx[NR] = ($6 - $7) / $5; r[NR] = ($10 - $9) * 1024 / $8
		printf "| %s | %.3f | %.3f | %.1f | %.1f | %.0f |\n", p[NR], u[NR], s[NR], c[NR], cx[NR], r[NR]
	}
	END {
		if (NR != 2 || u[2] == 0 || c[2] == 0 || cx[2] == 0)
			exit
		printf "\nsplice / userspace: user CPU %.1f%% (target <= 10%%); syscalls %.1f%%, " \
			"%.1f%% without clock_gettime (target <= 50%%); RSS per idle connection " \
			"with both directions in the kernel %.0f B (target <= 4096 B)\n",
			100 * u[1] / u[2], 100 * c[1] / c[2], 100 * cx[1] / cx[2], r[1]
	}'
	echo
	echo "Raw figures (utime/stime in 1/100 s, RssAnon in KiB; BENCH-TOP: most frequent system calls):"
	echo
	sed 's/^/    /' "$WORK/bench"
}

table | tee ${OUT:+"$OUT"}
exit $rc
