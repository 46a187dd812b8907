#!/bin/bash
# What kernel TLS + splice saves, measured inside the kTLS VM (scripts/vmtest.sh): the same
# boot runs the proxy once with `ktls = auto` (both directions in the kernel, relay splice)
# and once with `ktls = off` (OpenSSL in user space), in front of the same echo backend,
# driven by tlsplice-loadgen (AES-128-GCM, X25519, ECDSA P-256, one proxy worker, one bulk
# connection at a time), for TLS 1.2 and 1.3 and for two client record sizes: full records
# (the client writes 16 KiB at a time, so every record it sends carries 16 KiB) and small
# records (1 KiB writes). The backend's answers go back in whatever records the proxy makes.
#
#   scripts/bench_ktls.sh [--build-dir DIR] [--bulk-mib N] [--reps N] [--strace-mib N] [--copy-mib N]
#                         [--idle N] [--tls "1.2 1.3"] [--records "16384 1024"]
#                         [--extra NAME=BINARY]... [--memory SIZE] [--kernel 6.1|7] [--out FILE]
#                         [--callgrind MIB]
#
# --extra NAME=BINARY measures another tlsplice build in the same boot (rows NAME/splice,
# NAME/userspace), e.g. a build of an older commit; the loadgen and backend are this tree's.
# Per row (proxy/path, TLS version, client record size) it reports:
#   user CPU s/GiB   proxy utime (/proc/PID/stat) over a bulk transfer of --bulk-mib, the
#                    least of --reps transfers, per GiB relayed (bytes counted once per
#                    direction: client->backend plus backend->client), less one handshake's
#                    utime (measured apart: 10 handshakes of the same version)
#   sys CPU s/GiB    the same for stime (kernel work done on the proxy's behalf: with kTLS
#                    that includes the crypto), handshake not subtracted
#   syscalls/MiB     `strace -c -f -p PID` over a second bulk transfer (--strace-mib), all
#                    threads, per MiB relayed; also without clock_gettime
#   user copy B/MiB  bytes that system calls copied into the proxy's memory (sum of what
#                    read, readv, recv, recvfrom and recvmsg returned, `strace -e trace=...`
#                    over a third transfer, --copy-mib), per MiB relayed; it includes the
#                    handshake's few hundred bytes, so a path that copies no payload shows
#                    about 1 KiB / --copy-mib
#   splice B/call    mean bytes per splice call in that transfer
#   user instr/MiB   with --callgrind MIB, splice path only: the instructions the proxy ran
#                    in user space (callgrind counts nothing else) per MiB relayed, from two
#                    runs of the proxy under callgrind that differ only in MIB more relayed;
#                    unlike CPU seconds under TCG, it does not move with the host's load
#   RSS B/idle conn  RssAnon (/proc/PID/status) with N idle TLS 1.3 connections minus before,
#                    / N (--idle 0 skips it)
# qemu runs under TCG here, so wall-clock speed means nothing and is not reported, and CPU
# seconds are those of an emulated CPU: compare rows, not with figures from real hardware.
# Output: a markdown table on stdout (and in --out FILE). Exit 1 if the VM run failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$ROOT/build
BULK_MIB=128    # relayed per row and transfer for CPU (half each way)
REPS=3          # transfers per row for CPU, the least counts
STRACE_MIB=64   # relayed per row under strace -c
COPY_MIB=16     # relayed per row under the read/splice trace
IDLE_N=3000
TLS_VERSIONS="1.2 1.3"
RECORDS="16384 1024"
MEMORY=2048M
CG_MIB=0        # --callgrind: MiB relayed under callgrind, 0 = off
KERNEL=6.1      # as scripts/vmtest.sh --kernel: Debian 12's 6.1, or 7 (Debian 13's backports)
OUT=
EXTRAS=()

usage() { sed -n '10,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
	case $1 in
	--build-dir) BUILD_DIR=$(cd "$2" && pwd); shift 2 ;;
	--bulk-mib) BULK_MIB=$2; shift 2 ;;
	--reps) REPS=$2; shift 2 ;;
	--strace-mib) STRACE_MIB=$2; shift 2 ;;
	--copy-mib) COPY_MIB=$2; shift 2 ;;
	--idle) IDLE_N=$2; shift 2 ;;
	--tls) TLS_VERSIONS=$2; shift 2 ;;
	--records) RECORDS=$2; shift 2 ;;
	--extra) EXTRAS+=("$2"); shift 2 ;;
	--memory) MEMORY=$2; shift 2 ;;
	--kernel) KERNEL=$2; shift 2 ;;
	--callgrind) CG_MIB=$2; shift 2 ;;
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
"$LOADGEN" bulk -h 2>&1 | grep -- --tls >/dev/null ||
	{ echo "bench_ktls: $LOADGEN has no --tls (rebuild it)" >&2; exit 2; }
PROXIES="tlsplice=/opt/tlsplice/tlsplice"
EXTRA_FILES=()
for e in "${EXTRAS[@]+"${EXTRAS[@]}"}"; do
	name=${e%%=*} bin=${e#*=}
	[[ $name =~ ^[A-Za-z0-9_-]+$ ]] && [ "$bin" != "$e" ] && [ -x "$bin" ] ||
		{ echo "bench_ktls: --extra wants NAME=BINARY, got '$e'" >&2; exit 2; }
	PROXIES="$PROXIES $name=/opt/files/tlsplice-$name"
	EXTRA_FILES+=(--file "$bin:/opt/files/tlsplice-$name")
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench_ktls.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=localhost -addext subjectAltName=DNS:localhost \
	-keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

# The program that runs inside the VM (busybox sh). It prints "BENCH ROW key=value ..."
# lines, ROW being PROXY/PATH/TLS/RECORD; everything else is commentary.
cat > "$WORK/bench-ktls-vm" <<'VMEOF'
#!/bin/sh
F=/opt/files
BULK_MIB=@BULK_MIB@ REPS=@REPS@ STRACE_MIB=@STRACE_MIB@ COPY_MIB=@COPY_MIB@ IDLE_N=@IDLE_N@
TLS_VERSIONS="@TLS_VERSIONS@" RECORDS="@RECORDS@" PROXIES="@PROXIES@" CG_MIB=@CG_MIB@
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

# one bulk transfer of $1 MiB (half each way) at TLS $2 with $3-byte client records
bulk() {
	r=$(loadgen bulk -c 1 -n $(($1 / 2))M -w $3 -v $2 -d 1500)
	echo "$r" | grep -q 'status=ok' || fail "$row: bulk $1 MiB: $r"
}

# CPU, system calls and copies of one row: proxy $P, TLS $1, client records of $2 bytes.
# One connection per transfer: loadgen's bulk mode drives a connection for as long as it
# makes progress, so with several, the first can starve the others' handshakes.
measure_row() {
	row=$name/$1/$2
	# the least of REPS transfers: a vCPU that the host preempts charges the whole gap to
	# whatever mode it was in, so single figures carry outliers
	umin= smin= k=0
	while [ $k -lt $REPS ]; do
		u0=$(stat_field $P 14) s0=$(stat_field $P 15)
		bulk $BULK_MIB $1 $2
		u1=$(stat_field $P 14) s1=$(stat_field $P 15)
		u=$((u1 - u0)) s=$((s1 - s0))
		[ -z "$umin" ] || [ $u -lt $umin ] && umin=$u
		[ -z "$smin" ] || [ $s -lt $smin ] && smin=$s
		echo "BENCH-REP $row utime_ticks=$u stime_ticks=$s"
		k=$((k + 1))
	done
	echo "BENCH $row cpu mib=$BULK_MIB utime_ticks=$umin stime_ticks=$smin hs_utime_ticks10=$(eval echo \$HS_${1%.*}_${1#*.})"

	LD_LIBRARY_PATH=$F/lib $F/strace -c -f -p $P -o /tmp/strace.c 2>/tmp/strace.err &
	ST=$!
	wait_traced $P || fail "$row: strace did not attach"
	bulk $STRACE_MIB $1 $2
	kill -INT $ST; wait $ST
	calls=$(awk '$NF == "total" { print $4 }' /tmp/strace.c)
	cg=$(awk '$NF == "clock_gettime" { print $4 }' /tmp/strace.c)
	echo "BENCH $row syscalls mib=$STRACE_MIB calls=$calls clock_gettime=${cg:-0}"
	awk '$NF != "total" && NF >= 5 && $4 ~ /^[0-9]+$/ { print $4, $NF }' /tmp/strace.c |
		sort -n -r | head -n 5 |
		awk -v row=$row '{ t = t " " $2 "=" $1 } END { print "BENCH-TOP " row t }'

	# what system calls copied into the proxy, and how much each splice moved
	LD_LIBRARY_PATH=$F/lib $F/strace -f -qq -e signal=none -e trace=read,readv,recvfrom,recvmsg,splice \
		-p $P -o /tmp/strace.io 2>/dev/null &
	ST=$!
	wait_traced $P || fail "$row: strace did not attach"
	bulk $COPY_MIB $1 $2
	kill -INT $ST; wait $ST
	# an interrupted call shows "<unfinished ...>", its end "<... NAME resumed> ... = N"
	awk -v row=$row -v mib=$COPY_MIB '
		{ n = $NF; sc = $2; sub(/\(.*/, "", sc) }
		/resumed>/ { sc = $3 }
		/unfinished \.\.\.>$/ || n !~ /^[0-9]+$/ { next }
		sc == "splice" { sp++; spb += n; next }
		sc ~ /^(read|readv|recvfrom|recvmsg)$/ { rd++; rdb += n }
		END { printf "BENCH %s copies mib=%d reads=%d read_bytes=%d splices=%d splice_bytes=%d\n",
			row, mib, rd, rdb, sp, spb }' /tmp/strace.io
}

# User-space instructions per MiB relayed: the proxy under callgrind twice, relaying 2 MiB
# and 2 + CG_MIB MiB with the same start-up and handshakes, so the difference is the relay.
callgrind_rows() {
	for v in $TLS_VERSIONS; do
		for rec in $RECORDS; do
			row=$name/$v/$rec irs=
			for mib in 2 $((CG_MIB + 2)); do
				VALGRIND_LIB=$F/valgrind $F/valgrind/valgrind.bin --tool=callgrind \
					--callgrind-out-file=/tmp/cg.out $BIN -c /tmp/$path.ini 2>/tmp/cg.err &
				P=$!
				loadgen probe -d 900 >/dev/null ||
					fail "$row: proxy under callgrind not up: $(tail -n 3 /tmp/cg.err)"
				bulk $mib $v $rec
				kill -TERM $P; wait $P
				irs="$irs $(awk '/^(summary|totals):/ { print $2; exit }' /tmp/cg.out)"
			done
			set -- $irs
			echo "BENCH $row callgrind mib=$CG_MIB ir_small=$1 ir_big=$2"
		done
	done
}

run_path() {
	path=$1 ktls=$2 name=$3/$1
	cat > /tmp/$path.ini <<EOF
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
	$BIN -c /tmp/$path.ini 2>/tmp/$path.err &
	P=$!
	loadgen probe -d 60 >/tmp/$path.probe || fail "$name: proxy not up: $(cat /tmp/$path.err)"
	# warm-up: pools and allocator arenas reach their working size
	row=$name/warm-up
	bulk 4 1.3 16384

	# what one handshake costs the proxy, to take out of the bulk figure (which has one)
	for v in $TLS_VERSIONS; do
		u0=$(stat_field $P 14)
		r=$(loadgen handshake -c 1 -n 10 -v $v -d 600)
		u1=$(stat_field $P 14)
		echo "$r" | grep -q 'status=ok' || fail "$name: handshakes TLS $v: $r"
		eval HS_${v%.*}_${v#*.}=$((u1 - u0))
		echo "BENCH $name/$v handshake n=10 utime_ticks=$((u1 - u0))"
	done

	for v in $TLS_VERSIONS; do
		for rec in $RECORDS; do
			measure_row $v $rec
		done
	done

	if [ "$IDLE_N" -gt 0 ]; then
		rss0=$(rss_anon $P)
		loadgen idle -n $IDLE_N -c 64 -d 1200 >/tmp/$path.idle 2>/tmp/$path.idle.err &
		LG=$!
		wait_line /tmp/$path.idle READY || fail "$name: idle connections not up: $(tail -n 3 /tmp/$path.idle.err)"
		rss1=$(rss_anon $P)
		echo "BENCH $name idle n=$IDLE_N rss0_kib=$rss0 rss1_kib=$rss1"
		kill -TERM $LG; wait $LG
	fi
	kill -TERM $P; wait $P
	[ "$CG_MIB" -gt 0 ] && [ $path = splice ] && callgrind_rows
	return 0
}

echo "BENCH-INFO clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource) kernel=$(uname -r)"
for px in $PROXIES; do
	BIN=${px#*=}
	run_path splice auto ${px%%=*}
	run_path userspace off ${px%%=*}
done
kill -TERM $SRV; wait $SRV
echo "BENCH-DONE"
VMEOF
sed -i -e "s/@BULK_MIB@/$BULK_MIB/" -e "s/@STRACE_MIB@/$STRACE_MIB/" \
	-e "s/@COPY_MIB@/$COPY_MIB/" -e "s/@REPS@/$REPS/" -e "s/@IDLE_N@/$IDLE_N/" -e "s/@TLS_VERSIONS@/$TLS_VERSIONS/" \
	-e "s/@RECORDS@/$RECORDS/" -e "s/@CG_MIB@/$CG_MIB/" -e "s|@PROXIES@|$PROXIES|" "$WORK/bench-ktls-vm"
chmod 755 "$WORK/bench-ktls-vm"

# strace's own libraries go where its ld.so looks for them (LD_LIBRARY_PATH above).
FILES=(--file "$LOADGEN" --file "$BENCHSRV" --file "$STRACE" --file "$WORK/cert.pem"
	--file "$WORK/key.pem" "${EXTRA_FILES[@]+"${EXTRA_FILES[@]}"}")
while IFS= read -r lib; do
	FILES+=(--file "$lib:/opt/files/lib/$(basename "$lib")")
done < <(ldd "$STRACE" | awk '/=> \// { print $3 }')
if [ "$CG_MIB" -gt 0 ]; then
	VG=/usr/libexec/valgrind
	[ -x /usr/bin/valgrind.bin ] && [ -x $VG/callgrind-amd64-linux ] ||
		{ echo "bench_ktls: --callgrind needs valgrind (apt-get install valgrind)" >&2; exit 2; }
	for f in /usr/bin/valgrind.bin $VG/callgrind-amd64-linux $VG/vgpreload_core-amd64-linux.so \
		$VG/default.supp; do
		FILES+=(--file "$f:/opt/files/valgrind/$(basename "$f")")
	done
fi

rc=0
VMTEST_MEMORY=$MEMORY "$ROOT/scripts/vmtest.sh" --build-dir "$BUILD_DIR" --kernel "$KERNEL" --timeout 3500 \
	"${FILES[@]}" "$WORK/bench-ktls-vm" > "$WORK/tap" 2> "$WORK/log" || rc=$?
tr -d '\r' < "$WORK/log" | grep '^BENCH' > "$WORK/bench" || true
if ! grep -q '^BENCH-DONE' "$WORK/bench"; then
	echo "bench_ktls: the VM run did not finish:" >&2
	cat "$WORK/tap" >&2
	tail -n 40 "$WORK/log" >&2
	exit 1
fi

# One table per client record size; rows PROXY/PATH, TLS version.
table() {
	local rec
	for rec in $RECORDS; do
		echo
		if [ "$rec" -ge 16384 ]; then
			echo "Full records: the client writes $rec bytes at a time, so each record it sends carries 16 KiB."
		else
			echo "Small records: the client writes $rec bytes at a time, one record each."
		fi
		echo
		echo "| proxy/path | TLS | user CPU s/GiB | sys CPU s/GiB | syscalls/MiB | syscalls/MiB without clock_gettime | user copy B/MiB | splice B/call | user instr/MiB |"
		echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
		awk -v rec=$rec '$1 == "BENCH" {
			n = split($2, k, "/"); if (n != 4 || k[4] != rec) next
			row = k[1] "/" k[2] " " k[3]
			if (!(row in seen)) { seen[row] = 1; order[++nr] = row }
			for (i = 4; i <= NF; i++) { split($i, kv, "="); v[row, $3, kv[1]] = kv[2] }
		}
		END {
			for (j = 1; j <= nr; j++) {
				r = order[j]; split(r, rk, " ")
				gib = v[r, "cpu", "mib"] / 1024
				u = (v[r, "cpu", "utime_ticks"] - v[r, "cpu", "hs_utime_ticks10"] / 10) / 100 / gib
				s = v[r, "cpu", "stime_ticks"] / 100 / gib
				m = v[r, "syscalls", "mib"]
				c = v[r, "syscalls", "calls"] / m
				cx = (v[r, "syscalls", "calls"] - v[r, "syscalls", "clock_gettime"]) / m
				cp = v[r, "copies", "read_bytes"] / v[r, "copies", "mib"]
				sp = v[r, "copies", "splices"]
				spb = sp ? sprintf("%.0f", v[r, "copies", "splice_bytes"] / sp) : "-"
				cm = v[r, "callgrind", "mib"]
				ir = cm ? sprintf("%.0f", (v[r, "callgrind", "ir_big"] - v[r, "callgrind", "ir_small"]) / cm) : "-"
				printf "| %s | %s | %.3f | %.3f | %.1f | %.1f | %.0f | %s | %s |\n",
					rk[1], rk[2], u < 0 ? 0 : u, s, c, cx, cp, spb, ir
			}
		}' "$WORK/bench"
	done
	if grep -q '^BENCH [^ ]* idle ' "$WORK/bench"; then
		echo
		echo "| proxy/path | RSS B/idle conn (TLS 1.3) |"
		echo "|---|---:|"
		awk '$1 == "BENCH" && $3 == "idle" {
			for (i = 4; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			printf "| %s | %.0f |\n", $2, (v["rss1_kib"] - v["rss0_kib"]) * 1024 / v["n"] }' \
			"$WORK/bench"
	fi
	echo
	echo "Raw figures (utime/stime in 1/100 s, RssAnon in KiB; BENCH-TOP: most frequent system calls):"
	echo
	sed 's/^/    /' "$WORK/bench"
}

table | tee ${OUT:+"$OUT"}
exit $rc
