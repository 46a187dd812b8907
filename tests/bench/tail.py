#!/usr/bin/env python3
"""Where a request/response tail comes from, from tlsplice-loadgen's per-request trace (-T).

A request is slow when it took more than p50 + EXTRA_US (default 700 µs: "an extra
millisecond"). A slow request was either
  - left behind: the other connections kept completing requests meanwhile, at no less than
    half the run's mean rate; the proxy served them and not this one (a cause inside the
    proxy: a pump that yields and is not run again soon, bytes held in a buffer no event
    announces, a send that waits for more), or
  - stalled: the other connections made no such progress either; nothing moved (the proxy,
    the load generator or the backend was not running: preempted by other work on the
    host, or a long pause inside one of them).

The sorting means most at a few connections (16): from about 64 up, after every stall the
proxy serves the connections that waited one after another, and the last of them count as
left behind whatever the proxy.

Prints one line:
    TAIL requests=N p50_us= p99_us= p999_us= slow=N slow_per_k= left_behind=N
         left_behind_per_k= stalled=N stall_events=N

Usage: tail.py TRACE [EXTRA_US]
"""
import bisect
import sys


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    extra = float(sys.argv[2]) if len(sys.argv) > 2 else 700.0
    rows = []
    with open(sys.argv[1]) as f:
        for line in f:
            start, conn, lat = line.split()
            rows.append((float(start), int(conn), float(lat)))
    if not rows:
        print("TAIL requests=0")
        return 1
    lat = sorted(r[2] for r in rows)
    n = len(lat)

    def pct(q):
        return lat[min(n - 1, max(0, int(q * n + 0.999999) - 1))]

    ends = sorted(r[0] + r[2] for r in rows)
    span = ends[-1] - min(r[0] for r in rows)
    rate = n / span if span > 0 else 0.0  # completions per µs
    slow = [r for r in rows if r[2] > pct(0.5) + extra]
    behind = 0
    stalled_at = []
    for start, _, l in slow:
        done = bisect.bisect_right(ends, start + l) - bisect.bisect_left(ends, start)
        if done >= 0.5 * rate * l:
            behind += 1
        else:
            stalled_at.append(start + l)
    # stalled requests that ended within 1 ms of each other are one event
    events = 0
    last = None
    for t in sorted(stalled_at):
        if last is None or t - last > 1000:
            events += 1
        last = t
    print(
        f"TAIL requests={n} p50_us={pct(0.5):.1f} p99_us={pct(0.99):.1f}"
        f" p999_us={pct(0.999):.1f} slow={len(slow)} slow_per_k={1e3 * len(slow) / n:.2f}"
        f" left_behind={behind} left_behind_per_k={1e3 * behind / n:.2f}"
        f" stalled={len(stalled_at)} stall_events={events}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
