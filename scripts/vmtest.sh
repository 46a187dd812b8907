#!/bin/bash
# Runs test programs inside a small VM whose kernel has kernel TLS (this machine's may not):
# a Debian cloud kernel under qemu TCG, booted from an initramfs holding busybox, the tls and
# AEAD modules, the proxy binary, the programs and their shared libraries.
#
#   scripts/vmtest.sh [--kernel 6.1|7] [--build-dir DIR] [--sysroot DIR] [--file SRC[:DEST]]...
#                     [--env NAME=VALUE]... [--args 'ARGS'] [--timeout SECONDS] PROGRAM...
#
# --kernel 6.1 (the default; also "12", "bookworm"): Debian 12's cloud kernel, the package
# behind linux-image-cloud-amd64 in this machine's apt. --kernel 7 (also "backports"): the
# newest linux-binary-*-cloud-amd64 of Debian 13's trixie-backports, fetched with a private apt
# configuration (its own sources, lists and cache under the cache folder; suites trixie and
# trixie-backports on the mirror this machine's apt sources name), falling back to a package
# known to work here when the newest cannot be had. VMTEST_KERNEL sets the default.
# Each PROGRAM runs in turn inside the VM with TLSPLICE_BIN set to the proxy's path there,
# TLSPLICE_EMULATED=1, cwd and TMPDIR on a writable tmpfs /tmp, and ARGS (split on spaces)
# after its name.
# --sysroot DIR takes the shared libraries of the proxy and the programs (and their dynamic
# loader) from the tree DIR, e.g. a Debian 13 chroot the build was made in, instead of this
# machine: every dynamically linked program given must then be built against DIR.
# --file copies SRC into the VM at DEST (default /opt/files/NAME). Criterion binaries run
# with a TAP report; any other program counts as one test that passes on exit status 0.
# stdout: TAP only ("1..N", then "ok N - [KERNEL] name", "not ok N - [KERNEL] name",
# "... # SKIP why"; KERNEL is the release the VM ran, e.g. 6.1.0-57-cloud-amd64); everything
# else goes to stderr. Exit status: 0 when nothing failed, 1 when a test failed or the VM did
# not finish in time, 2 on a usage error. If qemu or the kernel package cannot be had, prints
# "ok 1 - vm # SKIP why" and exits 0.
# Cache: .vm/ at the repository top (VMTEST_CACHE overrides), reused across runs; the private
# apt lists for --kernel 7 are refreshed when a day old.
# Other knobs: VMTEST_TIMEOUT (seconds, default 480), VMTEST_MEMORY (1024M), VMTEST_CPU
# (qemu -cpu model, default max), VMTEST_MODULES (extra kernel modules to load).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$ROOT/build
CACHE=${VMTEST_CACHE:-$ROOT/.vm}
TIMEOUT=${VMTEST_TIMEOUT:-480}
MEMORY=${VMTEST_MEMORY:-1024M}
CPU=${VMTEST_CPU:-max}
KERNEL=${VMTEST_KERNEL:-6.1}
SYSROOT=
# The trixie-backports kernel this suite was last seen passing on: used when the newest
# cannot be downloaded or is not laid out as expected.
BACKPORTS_FALLBACK=linux-binary-7.3.4+deb13-cloud-amd64
PROGRAMS=()
FILES=()
ENVS=()
PROG_ARGS=
# Modules to load, deepest dependencies resolved from each module's own modinfo. The crypto
# templates are loaded explicitly because the kernel asks for them with request_module(),
# which needs a modprobe the initramfs does not have. Names of both kernels: 6.1 has
# chacha_generic, chacha_x86_64 and poly1305_x86_64; 7.x has chacha (with libchacha) and
# libpoly1305 instead, and without them ChaCha20 silently stays in user space. A name the
# kernel does not have is logged and passed over.
WANT_MODULES="tls ctr gcm ghash_generic ccm chacha20poly1305 chacha_generic poly1305_generic
aesni_intel ghash_clmulni_intel chacha_x86_64 poly1305_x86_64 chacha libchacha libpoly1305
${VMTEST_MODULES:-}"

log() { echo "vmtest: $*" >&2; }
skip() { echo "ok 1 - vm # SKIP $*"; exit 0; }
usage() { sed -n '6,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

parse_args() {
	while [ $# -gt 0 ]; do
		case $1 in
		--build-dir) [ $# -ge 2 ] || usage; BUILD_DIR=$(cd "$2" && pwd); shift 2 ;;
		--kernel) [ $# -ge 2 ] || usage; KERNEL=$2; shift 2 ;;
		--sysroot) [ $# -ge 2 ] || usage; SYSROOT=$(cd "$2" && pwd -P); shift 2 ;;
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
	case $KERNEL in
	6.1|12|bookworm) KERNEL=6.1 ;;
	7|7.x|backports|trixie-backports) KERNEL=backports ;;
	*) log "unknown kernel '$KERNEL' (6.1 or 7)"; usage ;;
	esac
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

# Sets KROOT to an unpacked Debian 12 kernel package in the cache, downloading it on first use.
ensure_bookworm_kernel() {
	local pkg deb
	pkg=$(kernel_package_name)
	if [ -z "$pkg" ] && apt_update_once; then
		pkg=$(kernel_package_name)
	fi
	if [ -z "$pkg" ]; then
		# Offline or no apt: fall back to whatever a previous run unpacked.
		pkg=$(cached_kernel 'linux-image-*')
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

# The newest kernel package matching GLOB that a previous run unpacked, if any.
cached_kernel() {
	ls -1d "$CACHE"/$1/.unpacked 2>/dev/null | xargs -r -n1 dirname | xargs -r -n1 basename |
		sort -V | tail -n1 || true
}

# The Debian mirror this machine's apt sources name (not the security archive).
apt_mirror() {
	local m
	m=$({ grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{ print $2 }'
	      grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
		sed 's/\[[^]]*\]//' | awk '{ print $2 }'; } | grep -E '/debian/?$' | head -n1)
	echo "${m:-http://deb.debian.org/debian}"
}

# apt-get or apt-cache with a private configuration for trixie and trixie-backports: the
# machine's own sources, lists and cache are neither read nor changed.
BP_APT=
bp_apt() {
	local tool=$1
	shift
	"$tool" -o Dir::Etc::sourcelist="$BP_APT/sources.list" -o Dir::Etc::sourceparts=- \
		-o Dir::State::Lists="$BP_APT/lists" -o Dir::Cache="$BP_APT/cache" \
		-o Acquire::Languages=none -o Acquire::GzipIndexes=true "$@"
}

# Writes the private sources and refreshes the lists when missing or a day old.
bp_apt_refresh() {
	local mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg opt= suite
	BP_APT=$CACHE/apt-trixie
	mkdir -p "$BP_APT/lists/partial" "$BP_APT/cache/archives/partial"
	mirror=$(apt_mirror)
	[ -r "$keyring" ] && opt="[signed-by=$keyring] "
	for suite in trixie trixie-backports; do
		echo "deb $opt$mirror $suite main"
	done > "$BP_APT/sources.list"
	if [ -n "$(find "$BP_APT/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null)" ]; then
		return 0
	fi
	log "apt-get update (trixie, trixie-backports from $mirror, private lists)"
	bp_apt apt-get update -qq >&2 || log "private apt-get update failed; using older lists if any"
}

# Downloads and unpacks linux-binary-VER (vmlinuz) and linux-modules-VER into the cache.
bp_unpack() {
	local pkg=$1 dir=$CACHE/$1 tmp deb
	[ -e "$dir/.unpacked" ] && return 0
	tmp=$(mktemp -d "$CACHE/.download.XXXXXX")
	log "downloading $pkg and ${pkg/#linux-binary-/linux-modules-}"
	if ! (cd "$tmp" && bp_apt apt-get download -qq "$pkg" "${pkg/#linux-binary-/linux-modules-}") >&2; then
		rm -rf "$tmp"
		return 1
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	for deb in "$tmp"/*.deb; do
		dpkg-deb -x "$deb" "$dir" || { rm -rf "$tmp" "$dir"; return 1; }
	done
	rm -rf "$tmp"
	# the layout this script knows: vmlinuz and the tls module under usr/lib/modules/VER/
	if ! ls "$dir"/usr/lib/modules/*/vmlinuz >/dev/null 2>&1 ||
		[ -z "$(find "$dir"/usr/lib/modules -name 'tls.ko*' | head -n1)" ]; then
		log "$pkg: no usr/lib/modules/*/vmlinuz or tls module"
		rm -rf "$dir"
		return 1
	fi
	touch "$dir/.unpacked"
}

# Sets KROOT to the newest trixie-backports cloud kernel (by version), or the known-good one.
ensure_backports_kernel() {
	local newest pkg
	bp_apt_refresh
	newest=$(bp_apt apt-cache pkgnames linux-binary- 2>/dev/null |
		grep -E '^linux-binary-[0-9][^ ]*-cloud-amd64$' | sort -V | tail -n1 || true)
	for pkg in $newest $([ "$newest" = "$BACKPORTS_FALLBACK" ] || echo "$BACKPORTS_FALLBACK"); do
		if bp_unpack "$pkg"; then
			[ "$pkg" = "$newest" ] || log "using the known-good $pkg instead of '$newest'"
			KROOT=$CACHE/$pkg
			return 0
		fi
	done
	pkg=$(cached_kernel 'linux-binary-*')
	[ -n "$pkg" ] || skip "cannot download a trixie-backports cloud kernel"
	log "offline: using the cached $pkg"
	KROOT=$CACHE/$pkg
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

# PATH as seen inside the sysroot, every symlink resolved there (absolute ones included).
sysroot_real() {
	local rest=${1#/} cur= part link hops=0
	while [ -n "$rest" ]; do
		part=${rest%%/*}
		[ "$part" = "$rest" ] && rest= || rest=${rest#*/}
		case $part in
		''|.) continue ;;
		..) cur=${cur%/*}; continue ;;
		esac
		if [ -L "$SYSROOT$cur/$part" ]; then
			hops=$((hops + 1))
			[ $hops -le 40 ] || return 1
			link=$(readlink "$SYSROOT$cur/$part")
			case $link in /*) cur= ;; esac
			rest=${link#/}${rest:+/$rest}
		else
			cur=$cur/$part
		fi
	done
	echo "$cur"
}

# "SOURCE DEST" for each shared library FILE needs and its loader: from this machine (ldd),
# or with --sysroot found by the sysroot's own loader in its library folders, and placed in
# the VM where that loader looks by default.
lib_list() {
	local src=$1 interp ld dirs d lib
	if [ -z "$SYSROOT" ]; then
		{ ldd "$src" 2>/dev/null || true; } |
			awk '/=> \// { print $3, $3 } /^\t\// { print $1, $1 }'
		return 0
	fi
	interp=$({ readelf -l "$src" 2>/dev/null || true; } | sed -n 's/.*interpreter: \(.*\)\]$/\1/p')
	[ -n "$interp" ] || return 0 # statically linked
	ld=$SYSROOT$(sysroot_real "$interp")
	dirs=
	for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib /usr/lib; do
		dirs=$dirs${dirs:+:}$SYSROOT$d
	done
	echo "$ld $interp"
	"$ld" --inhibit-cache --library-path "$dirs" --list "$src" |
		awk '/=> / && $2 == "=>" { print $1, $3 }' |
	while read -r lib d; do
		case $d in
		"$SYSROOT"/*) d=${d#"$SYSROOT"}; echo "$SYSROOT$(sysroot_real "$d") $d" ;;
		*) log "$src: $lib is not in $SYSROOT ($d)"; return 1 ;;
		esac
	done
}

# Copies a file into the staging tree at the same path, with the shared libraries it needs.
copy_with_libs() {
	local src=$1 dest=$2 from to
	mkdir -p "$STAGE$(dirname "$dest")"
	cp -L "$src" "$STAGE$dest"
	if ! lib_list "$src" > "$WORK/libs"; then
		echo "not ok 1 - vm: the shared libraries of $src cannot be found"
		exit 1
	fi
	while read -r from to; do
		[ -e "$STAGE$to" ] && continue
		mkdir -p "$STAGE$(dirname "$to")"
		cp -L "$from" "$STAGE$to"
	done < "$WORK/libs"
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
		# grep reads it all: with -q, lib_list could die of SIGPIPE and fail the pipeline
		lib_list "$p" | grep libcriterion >/dev/null && kind=criterion
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
	kernel=$({ ls -1 "$KROOT"/boot/vmlinuz-* "$KROOT"/usr/lib/modules/*/vmlinuz 2>/dev/null ||
		true; } | head -n1)
	log "booting $KVER (timeout ${TIMEOUT}s)"
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
	awk -v total_timeout="$TIMEOUT" -v kver="$KVER" '
	function emit(status, name) {
		n++
		lines[n] = status " " n " - [" kver "] " name
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
		printf "vmtest: [%s] %s exited %s after %ss\n", kver, prog, $3, $4 > "/dev/stderr"
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
	if [ "$KERNEL" = backports ]; then
		ensure_backports_kernel
	else
		ensure_bookworm_kernel
	fi
	# Debian 12 ships lib/modules/VER/, Debian 13 usr/lib/modules/VER/ (with vmlinuz in it)
	KMODDIR=$({ ls -1d "$KROOT"/lib/modules/*/kernel "$KROOT"/usr/lib/modules/*/kernel \
		2>/dev/null || true; } | head -n1 | xargs -r dirname)
	[ -n "$KMODDIR" ] || skip "no lib/modules in $KROOT"
	KVER=$(basename "$KMODDIR")
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
	# under TCG an early boot can crash (seen: an int3 Oops in the crypto self-tests of 7.x)
	# before init runs; that is no test result, so boot again, at most three times
	local try
	for try in 1 2 3; do
		: > "$WORK/results"
		run_vm
		grep -q '^VMTEST-BEGIN' "$WORK/results" && break
		log "the VM did not reach the test programs (boot $try of 3)"
	done
	report || rc=1
	log "done in $(( $(date +%s) - t0 ))s"
	return $rc
}

main "$@"
