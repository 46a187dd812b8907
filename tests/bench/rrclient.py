#!/usr/bin/env python3
"""An independent request/response client, to check tlsplice-loadgen's figures against.

It shares no code with loadgen.c: Python's ssl module, its own event loop (selectors), its
own clock reads and percentiles. C connections in a closed loop each send an S-byte message,
read the echo back, check it and send the next, for D seconds. It prints one line in
loadgen's form:

    RESULT mode=rr client=python status=ok conns=C requests=N secs=S rps=R
           p50_us=.. p99_us=.. p999_us=.. max_us=.. errors=E

Usage: rrclient.py -p PORT [-H HOST] [-c C] [-s SIZE] [-d SECS] [-S SNI]
"""
import argparse
import selectors
import socket
import ssl
import sys
import time


def connect(args, ctx):
    raw = socket.create_connection((args.host, args.port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s = ctx.wrap_socket(raw, server_hostname=args.sni)
    s.setblocking(False)
    return s


class Conn:
    def __init__(self, sock, msg):
        self.sock = sock
        self.msg = msg
        self.got = b""
        self.t0 = 0

    def send(self):
        self.got = b""
        self.t0 = time.perf_counter_ns()
        self.sock.sendall(self.msg)  # 64 bytes: one record, the buffer always takes it


def pct(sorted_lat, q):
    if not sorted_lat:
        return 0.0
    i = min(len(sorted_lat) - 1, max(0, int(q * len(sorted_lat) + 0.999999) - 1))
    return sorted_lat[i] / 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-H", "--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, required=True)
    ap.add_argument("-c", "--conc", type=int, default=1)
    ap.add_argument("-s", "--size", type=int, default=64)
    ap.add_argument("-d", "--duration", type=float, default=5.0)
    ap.add_argument("-S", "--sni", default="localhost")
    args = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    sel = selectors.DefaultSelector()
    conns = []
    errors = 0
    for i in range(args.conc):
        try:
            c = Conn(connect(args, ctx), bytes((i + j) % 251 for j in range(args.size)))
        except OSError as e:
            print(f"rrclient: connect: {e}", file=sys.stderr)
            errors += 1
            continue
        conns.append(c)
        sel.register(c.sock, selectors.EVENT_READ, c)
    lat = []
    t_start = time.perf_counter_ns()
    t_end = t_start + int(args.duration * 1e9)
    for c in conns:
        c.send()
    live = len(conns)
    while live and time.perf_counter_ns() < t_end:
        for key, _ in sel.select(timeout=0.5):
            c = key.data
            try:
                while len(c.got) < len(c.msg):
                    chunk = c.sock.recv(len(c.msg) - len(c.got))
                    if not chunk:
                        raise ConnectionError("early EOF")
                    c.got += chunk
            except ssl.SSLWantReadError:
                continue
            except OSError as e:
                print(f"rrclient: read: {e}", file=sys.stderr)
                errors += 1
                sel.unregister(c.sock)
                live -= 1
                continue
            now = time.perf_counter_ns()
            if c.got != c.msg:
                errors += 1
            lat.append(now - c.t0)
            if now < t_end:
                c.send()
    secs = (time.perf_counter_ns() - t_start) / 1e9
    for c in conns:
        c.sock.close()
    lat.sort()
    status = "ok" if errors == 0 and lat else "errors"
    print(
        f"RESULT mode=rr client=python status={status} conns={len(conns)} requests={len(lat)}"
        f" secs={secs:.3f} rps={len(lat) / secs:.1f} p50_us={pct(lat, 0.5):.1f}"
        f" p99_us={pct(lat, 0.99):.1f} p999_us={pct(lat, 0.999):.1f}"
        f" max_us={(lat[-1] / 1000.0 if lat else 0):.1f} errors={errors}"
    )
    return 0 if status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
