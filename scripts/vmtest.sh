#!/bin/bash
# Runs test programs inside a small VM whose kernel has kernel TLS (this machine's may not):
# Debian's cloud kernel under qemu TCG, booted from an initramfs holding busybox, the tls and
# AEAD modules, the proxy binary, the programs and their shared libraries.
#
#   scripts/vmtest.sh [--build-dir DIR] [--file SRC[:DEST]]... [--env NAME=VALUE]...
#                     [--args 'ARGS'] [--timeout SECONDS] PROGRAM...
#
# Each PROGRAM runs in turn inside the VM with TLSPLICE_BIN set to the proxy's path there,
# TLSPLICE_EMULATED=1, cwd and TMPDIR on a writable tmpfs /tmp, and ARGS (split on spaces)
# after its name.
# --file copies SRC into the VM at DEST (default /opt/files/NAME). Criterion binaries run
# with a TAP report; any other program counts as one test that passes on exit status 0.
# stdout: TAP only ("1..N", then "ok N - name", "not ok N - name", "... # SKIP why");
# everything else goes to stderr. Exit status: 0 when nothing failed, 1 when a test failed
# or the VM did not finish in time, 2 on a usage error. If qemu or the kernel package
# cannot be had, prints "ok 1 - vm # SKIP why" and exits 0.
# Cache: .vm/ at the repository top (VMTEST_CACHE overrides), reused across runs.
# Other knobs: VMTEST_TIMEOUT (seconds, default 480), VMTEST_MEMORY (1024M), VMTEST_CPU
# (qemu -cpu model, default max), VMTEST_MODULES (extra kernel modules to load).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$ROOT/build
CACHE=${VMTEST_CACHE:-$ROOT/.vm}
TIMEOUT=${VMTEST_TIMEOUT:-480}
MEMORY=${VMTEST_MEMORY:-1024M}
CPU=${VMTEST_CPU:-max}
PROGRAMS=()
FILES=()
ENVS=()
PROG_ARGS=
# Modules to load, deepest dependencies resolved from each module's own modinfo. The crypto
# templates are loaded explicitly because the kernel asks for them with request_module(),
# which needs a modprobe the initramfs does not have.
WANT_MODULES="tls ctr gcm ghash_generic ccm chacha20poly1305 chacha_generic poly1305_generic
aesni_intel ghash_clmulni_intel chacha_x86_64 poly1305_x86_64 ${VMTEST_MODULES:-}"

log() { echo "vmtest: $*" >&2; }
skip() { echo "ok 1 - vm # SKIP $*"; exit 0; }
usage() { sed -n '6,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

parse_args() {
	while [ $# -gt 0 ]; do
		case $1 in
		--build-dir) [ $# -ge 2 ] || usage; BUILD_DIR=$(cd "$2" && pwd); shift 2 ;;
		--file) [ $# -ge 2 ] || usage; FILES+=("$2"); shift 2 ;;
		--env) [ $# -ge 2 ] || usage; ENVS+=("$2"); shift 2 ;;
		--args) [ $# -ge 2 ] || usage; PROG_ARGS=$2; shift 2 ;;
		--timeout) [ $# -ge 2 ] || usage; TIMEOUT=$2; shift 2 ;;
		-h|--help) usage ;;
		--) shift; PROGRAMS+=("$@"); break ;;
		-*) log "unknown option $1"; usage ;;
		*) PROGRAMS+=("$1"); shift ;;
		esac
	done
	[ ${#PROGRAMS[@]} -gt 0 ] || usage
	local p
	for p in "${PROGRAMS[@]}"; do
		[ -x "$p" ] || { log "not an executable: $p"; exit 2; }
	done
}

APT_UPDATED=
apt_update_once() {
	[ -n "$APT_UPDATED" ] && return 0
	APT_UPDATED=1
	[ "$(id -u)" = 0 ] || return 1
	log "apt-get update"
	apt-get update -qq >&2 || return 1
}

# Installs the host tools (qemu, a static busybox, cpio) when missing; skips if it can't.
ensure_tools() {
	local missing=()
	command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
	[ -x /bin/busybox ] || command -v busybox >/dev/null || missing+=(busybox-static)
	command -v cpio >/dev/null || missing+=(cpio)
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] || skip "missing ${missing[*]} and not root to install them"
	apt_update_once || skip "apt-get update failed"
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >&2 || skip "could not install ${missing[*]}"
}

# The versioned package behind linux-image-cloud-amd64, e.g. linux-image-6.1.0-56-cloud-amd64.
kernel_package_name() {
	{ apt-cache depends linux-image-cloud-amd64 2>/dev/null || true; } |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

# Sets KROOT to an unpacked kernel package in the cache, downloading it on first use.
ensure_kernel() {
	local pkg deb
	pkg=$(kernel_package_name)
	if [ -z "$pkg" ] && apt_update_once; then
		pkg=$(kernel_package_name)
	fi
	if [ -z "$pkg" ]; then
		# Offline or no apt: fall back to whatever a previous run unpacked.
		pkg=$(ls -1d "$CACHE"/linux-image-*/.unpacked 2>/dev/null | sort -V | tail -n1 |
			xargs -r dirname | xargs -r basename || true)
		[ -n "$pkg" ] || skip "cannot resolve linux-image-cloud-amd64 with apt-cache"
	fi
	KROOT=$CACHE/$pkg
	[ -e "$KROOT/.unpacked" ] && return 0
	log "downloading $pkg"
	(cd "$CACHE" && apt-get download "$pkg") >&2 || skip "apt-get download $pkg failed"
	deb=$(ls -1 "$CACHE/${pkg}"_*.deb | tail -n1)
	rm -rf "$KROOT"
	mkdir -p "$KROOT"
	dpkg-deb -x "$deb" "$KROOT" || skip "dpkg-deb -x $deb failed"
	rm -f "$deb"
	touch "$KROOT/.unpacked"
}

# Module name (dashes as underscores) -> path of its .ko file, for this kernel.
declare -A MODPATH
index_modules() {
	local f n
	while IFS= read -r f; do
		n=${f##*/}
		n=${n%%.ko*}
		MODPATH[${n//-/_}]=$f
	done < <(find "$KMODDIR/kernel" -name '*.ko*')
}

# Uncompressed bytes of a module file (.ko, .ko.xz, .ko.zst, .ko.gz).
module_cat() {
	case $1 in
	*.ko.xz) xz -dc "$1" ;;
	*.ko.zst) zstd -dc "$1" ;;
	*.ko.gz) gzip -dc "$1" ;;
	*) cat "$1" ;;
	esac
}

declare -A MODSEEN
MODORDER=()
# Appends name after its dependencies (from the module's "depends=" modinfo) to MODORDER.
add_module() {
	local name=${1//-/_} deps d
	[ -n "${MODSEEN[$name]:-}" ] && return 0
	MODSEEN[$name]=1
	if [ -z "${MODPATH[$name]:-}" ]; then
		grep -q "/${name//_/[-_]}.ko" "$KMODDIR/modules.builtin" 2>/dev/null ||
			log "module $name not in this kernel (skipped)"
		return 0
	fi
	deps=$(module_cat "${MODPATH[$name]}" | tr '\0' '\n' | sed -n 's/^depends=//p' | head -n1)
	for d in ${deps//,/ }; do
		add_module "$d"
	done
	MODORDER+=("$name")
}

# Copies a file into the staging tree at the same path, with the shared libraries it needs.
copy_with_libs() {
	local src=$1 dest=$2 lib
	mkdir -p "$STAGE$(dirname "$dest")"
	cp -L "$src" "$STAGE$dest"
	{ ldd "$src" 2>/dev/null || true; } | awk '/=> \// { print $3 } /^\t\// { print $1 }' |
	while IFS= read -r lib; do
		[ -e "$STAGE$lib" ] && continue
		mkdir -p "$STAGE$(dirname "$lib")"
		cp -L "$lib" "$STAGE$lib"
	done
}

write_init() {
	cat > "$STAGE/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/tmp TMPDIR=/tmp TERM=dumb
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/shm /dev/pts
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs run /run
mount -t devpts pts /dev/pts
ip link set lo up
for m in $(cat /lib/modules/load.list); do
	insmod /lib/modules/$m.ko 2>/dev/null || echo "vm: insmod $m failed" >/dev/console
done
. /etc/vmtest.env
OUT=/dev/ttyS1
stty -F $OUT raw -echo 2>/dev/null
echo "VMTEST-BEGIN $(uname -r)" > $OUT
while read -r name kind; do
	echo "VMTEST-PROG $name" > $OUT
	start=$(cut -d. -f1 /proc/uptime)
	cd /tmp
	if [ "$kind" = criterion ]; then
		timeout "$VMTEST_PROG_TIMEOUT" /opt/tests/$name $VMTEST_PROG_ARGS --tap=/tmp/$name.tap \
			>/dev/console 2>&1 </dev/null
		rc=$?
		cat /tmp/$name.tap > $OUT 2>/dev/null
		echo > $OUT
	else
		timeout "$VMTEST_PROG_TIMEOUT" /opt/tests/$name $VMTEST_PROG_ARGS >/dev/console 2>&1 </dev/null
		rc=$?
	fi
	echo "VMTEST-EXIT $name $rc $(( $(cut -d. -f1 /proc/uptime) - start ))" > $OUT
done < /opt/tests/list
echo "VMTEST-END" > $OUT
sync
poweroff -f
EOF
	chmod 755 "$STAGE/init"
}

# /etc files the programs may want: name lookup of localhost, users for privilege drops.
write_etc() {
	mkdir -p "$STAGE/etc"
	printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' > "$STAGE/etc/hosts"
	printf 'hosts: files\npasswd: files\ngroup: files\n' > "$STAGE/etc/nsswitch.conf"
	printf 'root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
		> "$STAGE/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' > "$STAGE/etc/group"
}

# Environment of the programs inside: proxy path, per-program timeout, --env pairs.
write_env() {
	local e
	{
		echo "export TLSPLICE_BIN=/opt/tlsplice/tlsplice"
		# the CPU is emulated: tests that measure load and timing skip (see blast.h)
		echo "export TLSPLICE_EMULATED=1"
		echo "export VMTEST_PROG_TIMEOUT=$((TIMEOUT - 60 > 30 ? TIMEOUT - 60 : 30))"
		printf 'VMTEST_PROG_ARGS=%q\n' "$PROG_ARGS"
		for e in "${ENVS[@]+"${ENVS[@]}"}"; do
			printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"
		done
	} > "$STAGE/etc/vmtest.env"
}

stage_programs() {
	local p name kind f src dest
	mkdir -p "$STAGE/opt/tests" "$STAGE/opt/tlsplice"
	if [ -x "$BUILD_DIR/src/tlsplice" ]; then
		copy_with_libs "$BUILD_DIR/src/tlsplice" /opt/tlsplice/tlsplice
	else
		log "no proxy binary at $BUILD_DIR/src/tlsplice (TLSPLICE_BIN will not exist)"
	fi
	: > "$STAGE/opt/tests/list"
	for p in "${PROGRAMS[@]}"; do
		name=$(basename "$p")
		copy_with_libs "$p" "/opt/tests/$name"
		kind=plain
		{ ldd "$p" 2>/dev/null || true; } | grep -q libcriterion && kind=criterion
		echo "$name $kind" >> "$STAGE/opt/tests/list"
	done
	for f in "${FILES[@]+"${FILES[@]}"}"; do
		src=${f%%:*}
		dest=${f#*:}
		[ "$dest" = "$f" ] && dest=/opt/files/$(basename "$src")
		mkdir -p "$STAGE$(dirname "$dest")"
		cp -rL "$src" "$STAGE$dest"
	done
}

build_initramfs() {
	local m
	STAGE=$WORK/root
	mkdir -p "$STAGE"/{bin,sbin,proc,sys,dev,tmp,run,lib/modules}
	copy_with_libs "$( [ -x /bin/busybox ] && echo /bin/busybox || command -v busybox)" /bin/busybox
	for m in "${MODORDER[@]}"; do
		module_cat "${MODPATH[$m]}" > "$STAGE/lib/modules/$m.ko"
		echo "$m" >> "$STAGE/lib/modules/load.list"
	done
	write_init
	write_etc
	write_env
	stage_programs
	(cd "$STAGE" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$WORK/initrd.gz"
}

# Boots the VM; the programs' TAP reports come back on the second serial port.
run_vm() {
	local kernel rc=0
	kernel=$(ls -1 "$KROOT"/boot/vmlinuz-* | head -n1)
	log "booting $(basename "$kernel") (timeout ${TIMEOUT}s)"
	timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
		-accel tcg,thread=multi -cpu "$CPU" -smp 2 -m "$MEMORY" \
		-display none -monitor none -no-reboot -nic none \
		-serial stdio -serial "file:$WORK/results" \
		-kernel "$kernel" -initrd "$WORK/initrd.gz" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init" \
		</dev/null >&2 || rc=$?
	[ "$rc" = 124 ] || [ "$rc" = 137 ] && log "VM killed after ${TIMEOUT}s"
	return 0
}

# Turns the results stream into numbered TAP on stdout; returns 1 if anything failed.
report() {
	awk -v total_timeout="$TIMEOUT" '
	function emit(status, name) {
		n++
		lines[n] = status " " n " - " name
		if (status == "not ok") failed = 1
	}
	{ sub(/\r$/, "") }
	/^VMTEST-BEGIN / { begun = 1; next }
	/^VMTEST-PROG / { prog = $2; cases = 0; bad = 0; running = 1; next }
	/^VMTEST-EXIT / {
		running = 0
		if ($3 != 0 && !bad)
			emit("not ok", prog ": exit status " $3)
		else if (cases == 0)
			emit("ok", prog)
		printf "vmtest: %s exited %s after %ss\n", prog, $3, $4 > "/dev/stderr"
		next
	}
	/^VMTEST-END/ { ended = 1; next }
	running && /^(not )?ok - / {
		status = /^ok/ ? "ok" : "not ok"
		line = $0
		sub(/^(not )?ok - /, "", line)
		skip = ""
		if (match(line, / *# SKIP.*/)) {
			skip = substr(line, RSTART, RLENGTH)
			sub(/^ */, " ", skip)
			line = substr(line, 1, RSTART - 1)
		}
		sub(/ +\([0-9.]+s\)$/, "", line)
		emit(status, prog ": " line skip)
		cases++
		if (status == "not ok") bad = 1
		next
	}
	END {
		if (running) emit("not ok", prog ": did not finish")
		if (!begun) emit("not ok", "vm: did not boot")
		else if (!ended) emit("not ok", "vm: did not finish within " total_timeout "s")
		print "1.." n
		for (i = 1; i <= n; i++) print lines[i]
		exit failed
	}' "$WORK/results"
}

main() {
	local t0 rc=0
	parse_args "$@"
	t0=$(date +%s)
	mkdir -p "$CACHE" 2>/dev/null || true
	# One run at a time fills the cache; the VMs themselves may run side by side.
	if [ -w "$CACHE" ] && command -v flock >/dev/null; then
		exec 9>"$CACHE/.lock"
		flock -w 600 9 || log "cache lock busy; going on without it"
	fi
	ensure_tools
	ensure_kernel
	KMODDIR=$(ls -1d "$KROOT"/lib/modules/* | head -n1)
	index_modules
	local m
	for m in $WANT_MODULES; do
		add_module "$m"
	done
	[ -n "${MODSEEN[tls]:-}" ] && [ -n "${MODPATH[tls]:-}" ] || log "no tls.ko in $KMODDIR"
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmtest.XXXXXX")
	trap 'rm -rf "$WORK"' EXIT
	build_initramfs
	log "initramfs $(du -h "$WORK/initrd.gz" | cut -f1) ready after $(( $(date +%s) - t0 ))s"
	flock -u 9 2>/dev/null || true
	: > "$WORK/results"
	run_vm
	report || rc=1
	log "done in $(( $(date +%s) - t0 ))s"
	return $rc
}

main "$@"
