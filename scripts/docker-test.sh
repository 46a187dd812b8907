#!/usr/bin/env bash
# Builds the container image and proves it works the way Kubernetes runs a sidecar: as a
# non-root user (--user 999), with no capabilities (--cap-drop ALL) and a read-only root;
# a client's TLS reaches the backend through it, /healthz answers, SIGTERM exits 0.
#
#   scripts/docker-test.sh [--build-dir DIR]
#
# No registry is needed: a private dockerd is started (its own socket, data and exec root;
# no systemd, no iptables, no bridge) and the Debian 12 base images are built with
# debootstrap from the mirror this machine's apt sources name. The data root is kept under
# TLSPLICE_TEST_CACHE (default /var/lib/tlsplice-test) so later runs reuse the base images.
# stdout: TAP lines "ok - docker:NAME" / "not ok - docker:NAME"; details on stderr. Skips
# (one "ok - docker # SKIP why") only where Docker cannot run here. Exit 1 on a failure.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/debian.sh
. "$ROOT/scripts/lib/debian.sh"
BUILD_DIR=$ROOT/build
CACHE=${TLSPLICE_TEST_CACHE:-/var/lib/tlsplice-test}
RUN=/run/tlsplice-test-docker
export DOCKER_HOST=unix://$RUN/docker.sock DOCKER_BUILDKIT=0
IMAGE=tlsplice:test
failed=0 dockerd_pid= backend_pid= work=

log() { echo "docker-test: $*" >&2; }
ok() { echo "ok - docker:$1${2:+ ($2)}"; }
not_ok() { echo "not ok - docker:$1${2:+ ($2)}"; failed=1; }
skip() { echo "ok - docker # SKIP $*"; exit 0; }
check() { # NAME DETAIL COMMAND...: one TAP line for whether the command succeeds
	local name=$1 detail=$2; shift 2
	if "$@" >&2; then ok "$name" "$detail"; else not_ok "$name" "$detail"; fi
}

while [ $# -gt 0 ]; do
	case $1 in
	--build-dir) BUILD_DIR=$(cd "$2" && pwd); shift 2 ;;
	*) echo "usage: $0 [--build-dir DIR]" >&2; exit 2 ;;
	esac
done

cleanup() {
	docker rm -f tlsplice-test >/dev/null 2>&1
	[ -n "$backend_pid" ] && kill "$backend_pid" 2>/dev/null
	if [ -n "$dockerd_pid" ]; then
		kill "$dockerd_pid" 2>/dev/null
		for _ in $(seq 1 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$dockerd_pid" 2>/dev/null
	fi
	# dockerd leaves its network namespace mounted
	grep -q " $RUN/netns/default " /proc/mounts && umount "$RUN/netns/default"
	[ -n "$work" ] && rm -rf "$work"
}
trap cleanup EXIT

ensure_tools() {
	local missing=()
	command -v dockerd >/dev/null || missing+=(docker.io)
	command -v debootstrap >/dev/null || missing+=(debootstrap)
	command -v curl >/dev/null || missing+=(curl)
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] || skip "missing ${missing[*]} and not root to install them"
	log "installing ${missing[*]}"
	apt-get update -qq >&2 || skip "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >&2 || skip "cannot install ${missing[*]}"
}

start_dockerd() {
	mkdir -p "$CACHE/docker" "$RUN"
	dockerd --storage-driver=overlay2 --iptables=false --ip6tables=false --bridge=none \
		--data-root="$CACHE/docker" --exec-root="$RUN" --pidfile="$RUN/dockerd.pid" \
		--host="$DOCKER_HOST" >"$CACHE/dockerd.log" 2>&1 &
	dockerd_pid=$!
	for _ in $(seq 1 300); do
		docker info >/dev/null 2>&1 && return 0
		kill -0 "$dockerd_pid" 2>/dev/null || break
		sleep 0.1
	done
	tail -5 "$CACHE/dockerd.log" >&2
	skip "dockerd does not start here (see $CACHE/dockerd.log)"
}

# debian:12 and debian:12-slim from a debootstrap tree, as the official images are made.
base_images() {
	docker image inspect debian:12 debian:12-slim >/dev/null 2>&1 && return 0
	local tree=$CACHE/rootfs-12 mirror
	mirror=$(apt_mirror)
	rm -rf "$tree"
	log "debootstrap bookworm from $mirror"
	debootstrap --variant=minbase bookworm "$tree" "$mirror" >"$CACHE/debootstrap.log" 2>&1 ||
		{ tail -5 "$CACHE/debootstrap.log" >&2; return 1; }
	printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" \
		>"$tree/etc/apt/sources.list"
	cat >"$tree/etc/apt/apt.conf.d/docker-clean" <<-'EOF'
	DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
	APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
	Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
	EOF
	echo 'Acquire::Languages "none";' >"$tree/etc/apt/apt.conf.d/docker-no-languages"
	echo 'APT::AutoRemove::SuggestsImportant "false";' >"$tree/etc/apt/apt.conf.d/docker-autoremove-suggests"
	rm -rf "$tree"/var/cache/apt/* "$tree"/var/lib/apt/lists/*
	tar -C "$tree" -c . | docker import - debian:12 >&2 || return 1
	rm -rf "$tree"/usr/share/doc/* "$tree"/usr/share/man/* "$tree"/usr/share/info/* \
		"$tree"/usr/share/locale/* "$tree"/var/log/*
	tar -C "$tree" -c . | docker import - debian:12-slim >&2 || return 1
	rm -rf "$tree"
}

# A port below the ephemeral range that nothing listens on and that this run has not
# handed out yet ($work/picked-ports: callers use $(free_port), a subshell).
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 12000))
		grep -qx "$p" "$work/picked-ports" 2>/dev/null && continue
		grep -qi ":$(printf '%04X' "$p") " /proc/net/tcp /proc/net/tcp6 2>/dev/null && continue
		echo "$p" >>"$work/picked-ports"
		echo "$p"
		return
	done
	return 1
}

# Waits (bounded) until something listens on 127.0.0.1:$1.
wait_listen() {
	local hex
	hex=$(printf '0100007F:%04X' "$1")
	for _ in $(seq 1 300); do
		grep -q " $hex 00000000:0000 0A " /proc/net/tcp && return 0
		sleep 0.1
	done
	return 1
}

build_image() {
	local out ctx
	out=$(docker build --network=host -f "$ROOT/docker/Dockerfile" -t "$IMAGE" "$ROOT" 2>&1)
	local rc=$?
	echo "$out" | tail -5 >&2
	[ $rc -eq 0 ] || return 1
	ctx=$(echo "$out" | sed -n 's/^Sending build context to Docker daemon *//p' | tail -1)
	log "build context: $ctx"
	echo "$ctx"
}

# Size in bytes of a docker "123.4kB"/"5.2MB" figure.
ctx_bytes() {
	awk -v s="$1" 'BEGIN { n = s + 0; u = s; sub(/^[0-9.]+/, "", u);
		m = u == "kB" ? 1e3 : u == "MB" ? 1e6 : u == "GB" ? 1e9 : 1; printf "%d\n", n * m }'
}

run_container() { # CONF-DIR PORT METRICS-PORT
	docker run -d --name tlsplice-test --network=host --user 999 --cap-drop ALL --read-only --cpus 1 \
		--security-opt no-new-privileges -v "$1:/etc/tlsplice:ro" "$IMAGE" >&2
}

main() {
	[ "$(id -u)" = 0 ] || skip "needs root to start a dockerd"
	[ -x "$BUILD_DIR/tests/tools/tlsplice-testbackend" ] || { not_ok build "no test backend in $BUILD_DIR"; exit 1; }
	ensure_tools
	start_dockerd
	ok engine "dockerd $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
	if base_images; then ok base-images; else not_ok base-images; exit 1; fi

	local ctx
	if ctx=$(build_image); then ok build; else not_ok build; exit 1; fi
	local bytes
	bytes=$(ctx_bytes "$ctx")
	check build-context-is-the-sources "$ctx" test "$bytes" -lt 5000000
	local size user
	size=$(docker image inspect --format '{{.Size}}' "$IMAGE")
	user=$(docker image inspect --format '{{.Config.User}}' "$IMAGE")
	log "image size: $((size / 1000000)) MB"
	check image-user-is-not-root "USER $user" test -n "$user" -a "$user" != root -a "$user" != 0

	work=$(mktemp -d)
	local port mport bport
	port=$(free_port) && mport=$(free_port) && bport=$(free_port) || { not_ok ports; exit 1; }
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=docker.test -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
	chmod 0644 "$work/tls.key" "$work/tls.crt" # readable by uid 999 in the container
	cat >"$work/tlsplice.ini" <<-EOF
	[global]
	workers = auto
	metrics = 127.0.0.1:$mport
	shutdown_timeout = 5s
	[frontend app]
	listen = 127.0.0.1:$port
	cert = tls.crt
	key = tls.key
	backend = app
	[backend app]
	server = 127.0.0.1:$bport
	EOF
	chmod 0755 "$work"
	"$BUILD_DIR/tests/tools/tlsplice-testbackend" --listen "127.0.0.1:$bport" --mode hello \
		--name container >/dev/null 2>&1 &
	backend_pid=$!
	wait_listen "$bport" || { not_ok backend; exit 1; }

	if ! run_container "$work" "$port" "$mport" || ! wait_listen "$port"; then
		docker logs tlsplice-test >&2 2>&1
		not_ok starts-non-root-read-only-without-capabilities; exit 1
	fi
	ok starts-non-root-read-only-without-capabilities "--user 999 --cap-drop ALL --read-only --cpus 1"
	local pid status
	pid=$(docker inspect --format '{{.State.Pid}}' tlsplice-test)
	status=$(cat "/proc/$pid/status")
	check runs-as-uid-999 "" grep -Eq '^Uid:\s+999\s+999\s+999\s+999' <<<"$status"
	check holds-no-capability "" grep -Eq '^CapEff:\s+0+$' <<<"$status"
	check relays-tls "" bash -c "curl -sk --max-time 10 https://127.0.0.1:$port/ | grep -q 'hello from container'"
	check healthz "" bash -c "curl -s --max-time 10 http://127.0.0.1:$mport/healthz | grep -q ok"
	check workers-auto-follows-the-cpu-quota "--cpus 1" bash -c \
		"docker logs tlsplice-test 2>&1 | grep -q 'started: 1 workers (auto: .*cgroup quota 1.000 CPUs)'"
	local rc
	docker stop -t 20 tlsplice-test >/dev/null
	[ $failed = 0 ] || docker logs tlsplice-test >&2 2>&1
	rc=$(docker inspect --format '{{.State.ExitCode}}' tlsplice-test)
	check sigterm-exits-0 "exit $rc" test "$rc" = 0
	docker image prune -f >/dev/null 2>&1
	exit $failed
}

main
