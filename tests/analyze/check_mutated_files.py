#!/usr/bin/python3
"""check_mutated_files.py - moerun-analyze on valid telemetry files with hostile values
(issue 15): negative and huge counts, dropped over routed, counts whose sum overflows,
declared sizes far beyond what the file holds (10^12 steps or events in a 100 KB file),
implausible root attributes, non-finite and huge floats, out-of-range ids.

Each mutation of fixture.py's "full" file must end within seconds either with exit 1 and
one line naming the problem ("damaged file: ..." or the reader's shape message), or, where
the value is legal but odd (NaN router statistics, a huge float), with exit 0 and the
untouched totals: never a signal, never a wrong total. Files are kept under WORKDIR/mutated.
Usage: check_mutated_files.py MOERUN_ANALYZE WORKDIR
"""
import json
import os
import subprocess
import sys
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

analyze, work = sys.argv[1], os.path.join(sys.argv[2], "mutated")
os.makedirs(work, exist_ok=True)
ROUTED = fixture.S * sum(sum(x) for x in fixture.LOADS)  # 4 steps x 32 pairs per layer pair


def setv(path, idx, value):
    def f(h):
        d = h[path]
        a = d[...]
        a[idx] = value
        d[...] = a
    return f


def resize(path, rows):
    return lambda h: h[path].resize(rows, axis=0)


def attr(name, value, obj="/"):
    def f(h):
        h[obj].attrs[name] = value
    return f


def resize_steps(rows):
    def f(h):
        for k in h["steps"]:
            h["steps"][k].resize(rows, axis=0)
    return f


# name, mutation, want exit, text the message must contain (exit 1), or for exit 0 the
# routed total the report must give (None: the fixture's own)
CASES = [
    ("routed-negative", setv("steps/routed", (1, 0, 2), -5), 1, "damaged file: steps/routed"),
    ("routed-2^62", setv("steps/routed", (0, 1, 1), 1 << 62), 1, "damaged file: steps/routed"),
    ("routed-2^40-everywhere", lambda h: [setv("steps/routed", slice(None), 1 << 40)(h),
                                          setv("steps/processed", slice(None), 1 << 40)(h),
                                          setv("steps/dropped", slice(None), 0)(h),
                                          setv("steps/dropped_capacity", slice(None), 0)(h)],
     0, 32 * (1 << 40)),
    ("dropped-over-routed", setv("steps/dropped", (0, 0, 0), 99), 1, "damaged file: steps/dropped"),
    ("dropped-negative", setv("steps/dropped", (2, 1, 3), -1), 1, "damaged file: steps/dropped"),
    ("capacity-negative", setv("steps/capacity", (0, 0), -7), 1, "damaged file: steps/capacity"),
    ("traffic-2^62", setv("steps/traffic", (0, 0, 0, 0), 1 << 62), 1, "damaged file: steps/traffic"),
    ("steps-10^12", resize_steps(10 ** 12), 1, "damaged file"),
    ("events-10^12", resize("events", 10 ** 12), 1, "damaged file: events"),
    ("routes-10^12", lambda h: [h["routes"][k].resize(10 ** 12, axis=0) for k in h["routes"]],
     1, "damaged file: routes/"),
    ("experts-negative", attr("experts", np.int64(-1)), 1, "implausible sizes"),
    ("layers-2^40", attr("layers", np.int64(1 << 40)), 1, "implausible sizes"),
    ("nranks-0", attr("nranks", np.int64(0)), 1, "implausible sizes"),
    ("router-nan", setv("steps/router", (1, 0, slice(None)), np.nan), 0, None),
    ("router-1e300", setv("steps/router", (0, 1, slice(None)), 1e300), 0, None),
    ("phase-negative-inf", setv("steps/phase_time", (0, 0, 0, 0), -np.inf), 0, None),
    ("route-expert-negative", setv("routes/expert", (0, 0, 0), -3), 1, "damaged file: routes/expert"),
    ("route-expert-huge", setv("routes/expert", (1, 1, 1), 1 << 30), 1, "damaged file: routes/expert"),
    ("event-kind-999", lambda h: h["events"].__setitem__(
        0, (1, 0, 3, 1, 0.0, 0.0, b"x")) or None, 0, None),
    ("owner-out-of-range", setv("placement/expert_owner", 1, 1 << 30), 0, None),
    ("node-negative", setv("topology/node", 0, -9), 0, None),
    ("coselect-negative", setv("accumulated/coselect", (0, 0, 0), -(1 << 62)), 0, None),
]

fails = 0
for name, mutate, want, text in CASES:
    path = os.path.join(work, name + ".h5")
    fixture.write(path, "full")
    with h5py.File(path, "r+") as h:
        mutate(h)
    t0 = time.time()
    try:
        r = subprocess.run([analyze, path, "--json", "-"], capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        print(f"FAIL {name}: still running after 60 s")
        fails += 1
        continue
    dt = time.time() - t0
    err = r.stderr.decode("utf-8", "replace").strip()
    ok = r.returncode == want
    if ok and want == 1:
        ok = text in err and err.count("\n") == 0 and err.startswith("moerun-analyze: " + path)
    if ok and want == 0:
        run = json.loads(r.stdout)["runs"][0]  # strict JSON: no NaN or Infinity tokens
        wanted = ROUTED if text is None else text
        if run.get("routed") != wanted:
            ok = False
            err += f" (routed total {run.get('routed')}, want {wanted})"
    print(f"{'ok  ' if ok else 'FAIL'} {name}: exit {r.returncode} in {dt:.1f} s: {err[:200]}")
    fails += not ok
print(f"{len(CASES) - fails} of {len(CASES)} mutated files handled")
sys.exit(1 if fails else 0)
