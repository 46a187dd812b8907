# shellcheck shell=bash
# Sourced by scripts/bench.sh (its options and globals are set there).
# The test certificate and one config (and command line) per proxy, all with the same
# TLS settings in front of the same echo backend.

# ---------------------------------------------------------------- configs
WORK=
CERT=
KEY=
PEM=

make_cert() {
	CERT=$WORK/cert.pem
	KEY=$WORK/key.pem
	PEM=$WORK/combined.pem
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
		-subj /CN=localhost -addext subjectAltName=DNS:localhost \
		-keyout "$KEY" -out "$CERT" >/dev/null 2>&1 || die "cannot make the certificate"
	cat "$CERT" "$KEY" >"$PEM"
	# For peers without a knob for the TLS 1.3 ticket count (see env_for).
	cat >"$WORK/no-tickets.cnf" <<EOF
openssl_conf = bench_conf
[bench_conf]
ssl_conf = bench_ssl
[bench_ssl]
system_default = bench_sys
[bench_sys]
NumTickets = 0
EOF
}

# cfg_NAME FPORT BPORT writes the config; cmd_NAME prints the command line.
cfg_tlsplice() {
	cat >"$WORK/tlsplice.ini" <<EOF
[global]
workers = 1
access_log = off
log_level = warn
shutdown_timeout = 1s

[frontend bench]
listen = 127.0.0.1:$1
cert = cert.pem
key = key.pem
backend = b
tls_min_version = TLSv1.3
ciphersuites = TLS_AES_128_GCM_SHA256
session_tickets = off

[backend b]
server = 127.0.0.1:$2
check = none
EOF
}
cmd_tlsplice() { echo "${BIN_OF[${1:-tlsplice}]:-$TLSPLICE} -c $WORK/tlsplice.ini"; }

cfg_haproxy() {
	cat >"$WORK/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 9000
    tune.ssl.cachesize 0
    ssl-server-verify none
    pidfile $WORK/haproxy.pid

defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s

frontend bench
    bind 127.0.0.1:$1 ssl crt $PEM ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3 ciphersuites TLS_AES_128_GCM_SHA256 curves X25519 no-tls-tickets
    default_backend b

backend b
    server s1 127.0.0.1:$2
EOF
}
cmd_haproxy() { echo "haproxy -db -f $WORK/haproxy.cfg"; }

cfg_nginx() {
	local mod
	mod=$(dpkg -L libnginx-mod-stream 2>/dev/null | grep 'ngx_stream_module\.so$' | head -1)
	[ -n "$mod" ] || mod=/usr/lib/nginx/modules/ngx_stream_module.so
	mkdir -p "$WORK/nginx"
	cat >"$WORK/nginx.conf" <<EOF
load_module $mod;
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 9000; }
stream {
    server {
        listen 127.0.0.1:$1 ssl;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.3;
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
        ssl_ecdh_curve X25519;
        ssl_session_tickets off;
        ssl_session_cache off;
        proxy_pass 127.0.0.1:$2;
        proxy_timeout 300s;
    }
}
EOF
}
cmd_nginx() { echo "nginx -p $WORK/nginx -e $WORK/nginx-error.log -c $WORK/nginx.conf"; }

cfg_hitch() {
	local user=nobody group=nogroup
	# hitch refuses to run its workers as root
	getent passwd _hitch >/dev/null && user=_hitch
	getent group _hitch >/dev/null && group=_hitch
	mkdir -p "$WORK/hitch-ocsp"
	cat >"$WORK/hitch.conf" <<EOF
user = "$user"
group = "$group"
frontend = "[127.0.0.1]:$1"
backend = "[127.0.0.1]:$2"
pem-file = "$PEM"
workers = 1
backlog = 4096
keepalive = 3600
tls-protos = TLSv1.3
ciphersuites = "TLS_AES_128_GCM_SHA256"
ecdh-curve = "X25519"
daemon = off
syslog = off
log-level = 1
ocsp-dir = "$WORK/hitch-ocsp"
EOF
}
cmd_hitch() { echo "hitch --config=$WORK/hitch.conf"; }

cfg_stunnel() {
	cat >"$WORK/stunnel.conf" <<EOF
foreground = yes
pid = $WORK/stunnel.pid
syslog = no
output = $WORK/stunnel-out.log
debug = 3

[bench]
accept = 127.0.0.1:$1
connect = 127.0.0.1:$2
cert = $CERT
key = $KEY
sslVersionMin = TLSv1.3
sslVersionMax = TLSv1.3
ciphersuites = TLS_AES_128_GCM_SHA256
curves = X25519
options = NO_TICKET
sessionCacheSize = 1
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
EOF
}
cmd_stunnel() { echo "stunnel4 $WORK/stunnel.conf"; }

# Environment per proxy. With TLS 1.3, OpenSSL 3.0 still sends two (stateful)
# tickets per handshake when a server only sets SSL_OP_NO_TICKET, which is
# what "no-tls-tickets" (HAProxy), "ssl_session_tickets off" (nginx) and
# "options = NO_TICKET" (stunnel) do; hitch has no knob. The peers therefore
# get NumTickets = 0 through OPENSSL_CONF. tlsplice must manage with its own
# "session_tickets = off": the details table shows tickets per handshake.
# tlsplice-NAME (--extra) is a tlsplice too: same config, its own binary.
kind_of() {
	case $1 in
	tlsplice-*) echo tlsplice ;;
	*) echo "$1" ;;
	esac
}

env_for() {
	case $1 in
	tlsplice | tlsplice-*) echo "BENCH_PROXY=$1" ;;
	*) echo "OPENSSL_CONF=$WORK/no-tickets.cnf" ;;
	esac
}

binary_for() {
	case $1 in
	tlsplice | tlsplice-*) echo "${BIN_OF[$1]:-$TLSPLICE}" ;;
	stunnel) echo stunnel4 ;;
	*) echo "$1" ;;
	esac
}

version_of() {
	case $1 in
	tlsplice | tlsplice-*) "$(binary_for "$1")" -V 2>&1 | head -1 ;;
	haproxy) haproxy -v 2>&1 | head -1 | awk '{print "HAProxy " $3}' ;;
	nginx) nginx -v 2>&1 | sed 's/.*version: //' ;;
	hitch) hitch --version 2>&1 | head -1 ;;
	stunnel) stunnel4 -version 2>&1 | grep -m1 '^stunnel' | awk '{print "stunnel " $2}' ;;
	esac
}
