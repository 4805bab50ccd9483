#!/usr/bin/env python3
"""Writes a synthetic nginx `combined` access log of a polling fleet, for the
`ota-sign fleet status` benchmark (docs/BENCHMARKS.md): DEVICES devices check every
INTERVAL seconds for HOURS hours; 1.1.0 is released after a quarter of the time, every
device downloads it at its next check, 2 % roll back (they keep running 1.0.0 and say
`pf-1.1.0`), and 1 % go silent halfway. Deterministic (fixed seed).

    scripts/fleet-log.py --devices 1000 --hours 24 --interval 60 > /tmp/fleet.log
"""
import argparse
import hashlib
import random
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--devices", type=int, default=1000)
p.add_argument("--hours", type=float, default=24)
p.add_argument("--interval", type=int, default=60)
p.add_argument("--start", type=int, default=1_796_515_200)  # 2026-12-06 00:00:00Z
a = p.parse_args()

rng = random.Random(14)
span = int(a.hours * 3600)
release_at = a.start + span // 4
devices = []
for n in range(a.devices):
    ident = hashlib.sha256(b"dev-%d" % n).hexdigest()[:12]
    devices.append({
        "id": ident,
        "offset": rng.randrange(a.interval),
        "fails": rng.random() < 0.02,
        "silent_at": a.start + span // 2 if rng.random() < 0.01 else None,
    })

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
def stamp(t):
    g = time.gmtime(t)
    return "%02d/%s/%04d:%02d:%02d:%02d +0000" % (g.tm_mday, MONTHS[g.tm_mon - 1], g.tm_year, g.tm_hour, g.tm_min, g.tm_sec)

out = sys.stdout
checks = span // a.interval
for k in range(checks):
    for n, d in enumerate(devices):
        t = a.start + k * a.interval + d["offset"]
        if d["silent_at"] and t >= d["silent_at"]:
            continue
        released = t >= release_at
        state = d.get("state", "old")
        version = "1.1.0" if state == "new" else "1.0.0"
        outcome = {"old": "up", "new": "up", "failed": "pf-1.1.0"}[state]
        ua = "ota-agent/0.1.0 (i=%s;t=sensor;c=stable;v=%s;s=%d;r=%s)" % (
            d["id"], version, 1 if state == "new" else 0, outcome)
        status = 200 if released and state == "old" else 304
        out.write('10.%d.%d.%d - - [%s] "GET /fleet/sensor.stable.manifest HTTP/1.1" %d %d "-" "%s"\n' % (
            n >> 16, (n >> 8) & 255, n & 255, stamp(t), status, 368 if status == 200 else 0, ua))
        if released and state == "old":
            out.write('10.%d.%d.%d - - [%s] "GET /fleet/sensor-1.1.0-0a1b2c3d.ota HTTP/1.1" 200 77700 "-" "%s"\n' % (
                n >> 16, (n >> 8) & 255, n & 255, stamp(t + 5), ua))
            d["state"] = "failed" if d["fails"] else "new"
