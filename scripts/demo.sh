#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: installs what is missing, builds, makes a demo
# certificate, starts two demo backends and tlsplice on config/tlsplice.ini, and tells you
# how to try it. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

scripts/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

pem=config/demo.pem
if [ ! -s "$pem" ]; then
	echo "demo: making a self-signed certificate for localhost in $pem"
	tmp=$(mktemp -d)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
		-subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,DNS:demo.test,IP:127.0.0.1" \
		-keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
	umask 077
	cat "$tmp/cert.pem" "$tmp/key.pem" >"$pem"
	rm -rf "$tmp"
fi

pids=()
cleanup() {
	trap - INT TERM EXIT
	[ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
	wait 2>/dev/null
	echo "demo: stopped"
}
trap cleanup INT TERM EXIT

backend=build/tests/tools/tlsplice-testbackend
for i in 1 2; do
	"$backend" --listen 127.0.0.1:900$i --mode hello --name "backend-$i" >/dev/null &
	pids+=($!)
done
# Waits (bounded) until 127.0.0.1:PORT is listening (state 0A in the kernel's table; looking
# there instead of connecting keeps a probe out of the logs) while process PID lives.
wait_listen() { # PORT PID NAME
	local hex
	hex=$(printf '0100007F:%04X' "$1")
	for _ in $(seq 100); do
		grep -q " $hex 00000000:0000 0A " /proc/net/tcp && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	echo "demo: $3 did not start" >&2
	exit 1
}
# the backends first: tlsplice's first health check would otherwise find one not yet
# listening, log it DOWN, and send the first requests all to the other
wait_listen 9001 "${pids[0]}" backend-1
wait_listen 9002 "${pids[1]}" backend-2
build/src/tlsplice -c config/tlsplice.ini &
pids+=($!)
wait_listen 8443 "${pids[-1]}" tlsplice
cat <<TXT

tlsplice is listening on https://127.0.0.1:8443 and balances over two demo backends.
Try it (each request lands on the next backend in turn):

    curl -k https://127.0.0.1:8443/
    for i in 1 2 3 4; do curl -sk https://127.0.0.1:8443/; done

The access log (one JSON line per connection) prints below. Ctrl-C stops everything.

TXT
wait
