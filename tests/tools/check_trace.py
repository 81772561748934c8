#!/usr/bin/env python3
"""check_trace.py ANALYZE RUN.h5 WORKDIR — moerun-analyze --trace against the telemetry file.

Writes the Chrome trace of RUN.h5 and checks, reading RUN.h5 independently with h5py:
  - the file is JSON with a traceEvents list; every event has the keys its phase type needs
    (X: name ts dur pid tid; C: name ts pid args; M: name pid args; i: name ts pid s);
  - one thread track per rank (thread_name metadata for tids 0..P-1, every slice on one of them);
  - for each rank and each phase column, the X slices of that name add up to the sum of
    steps/phase_time[:, :, rank, column] (microseconds, to 1e-3 us per slice);
  - there is one layer slice per step x layer x rank lasting the "total" column, one step slice
    per step x rank; "_inter" and "_wait" parts lie inside their parent phase's slice;
  - the byte counters equal steps/traffic bytes_sent/bytes_inter summed per rank;
  - bad uses fail cleanly: --trace with two files (exit 2), a missing telemetry file
    (exit 1) leave no trace file behind.
"""
import json
import os
import subprocess
import sys

import h5py
import numpy as np

analyze, h5, work = sys.argv[1:4]
out = os.path.join(work, "trace.json")
if os.path.exists(out):
    os.unlink(out)
subprocess.run([analyze, h5, "--trace", out], check=True, stdout=subprocess.DEVNULL)

with open(out) as f:
    tr = json.load(f)
assert isinstance(tr, dict) and isinstance(tr.get("traceEvents"), list), "no traceEvents list"
ev = tr["traceEvents"]

need = {"X": ("name", "ts", "dur", "pid", "tid"), "C": ("name", "ts", "pid", "args"),
        "M": ("name", "pid", "args"), "i": ("name", "ts", "pid", "s")}
for e in ev:
    assert e.get("ph") in need, f"unexpected phase type {e.get('ph')!r}"
    for k in need[e["ph"]]:
        assert k in e, f"{e['ph']} event without {k}: {e}"
    if "dur" in e:
        assert e["dur"] >= 0, e

f = h5py.File(h5, "r")
ph = f["steps/phase_time"][()]                     # [S][L][P][C]
cols = [c.decode() if isinstance(c, bytes) else str(c) for c in f["steps/phase_time"].attrs["columns"]]
S, L, P, C = ph.shape
assert S > 0 and P >= 2, (S, P)

names = {e["tid"]: e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
assert sorted(names) == list(range(P)), f"thread tracks {sorted(names)} != ranks 0..{P - 1}"
assert all(names[p].startswith(f"rank {p}") for p in range(P)), names
xs = [e for e in ev if e["ph"] == "X"]
assert {e["tid"] for e in xs} == set(range(P)), "slices outside the rank tracks"

tol = 5e-3 * (S * L + 1)   # slices are whole ns; layers may be lengthened by a few ns of rounding
checked = 0
for p in range(P):
    mine = [e for e in xs if e["tid"] == p]
    for c, name in enumerate(cols):
        want = ph[:, :, p, c].sum() * 1e6
        if name == "total":
            got = [e["dur"] for e in mine if e["cat"] == "layer"]
            assert len(got) == S * L, (p, len(got), S * L)
        else:
            got = [e["dur"] for e in mine if e["name"] == name]
            assert len(got) == S * L, (p, name, len(got), S * L)
        assert abs(sum(got) - want) <= tol, f"rank {p} {name}: slices {sum(got)} us, file {want} us"
        checked += 1
    steps = [e for e in mine if e["cat"] == "step"]
    assert len(steps) == S, (p, len(steps))
    assert abs(sum(e["dur"] for e in steps) - ph[:, :, p, cols.index("total")].sum() * 1e6) <= tol
    # nesting: each part lies within its parent (same step, layer), starting at its start
    for part, parent in (("dispatch_inter", "dispatch"), ("combine_inter", "combine"),
                         ("counts_wait", "counts"), ("combine_wait", "combine")):
        if part not in cols:
            continue
        par = {(e["args"]["step"], e["args"]["layer"]): e for e in mine if e["name"] == parent}
        for e in mine:
            if e["name"] == part:
                q = par[(e["args"]["step"], e["args"]["layer"])]
                assert abs(e["ts"] - q["ts"]) < 1e-6, (e, q)
    # every phase slice lies inside its layer slice, every layer inside its step (exact: ns)
    lays = {(e["args"]["step"], e["args"]["layer"]): e for e in mine if e["cat"] == "layer"}
    stps = {e["args"]["step"]: e for e in mine if e["cat"] == "step"}
    for e in mine:
        if e["cat"] in ("phase", "phase_part"):
            q = lays[(e["args"]["step"], e["args"]["layer"])]
            assert q["ts"] <= e["ts"] and e["ts"] + e["dur"] <= q["ts"] + q["dur"] + 1e-6, (e, q)
    for q in lays.values():
        st = stps[q["args"]["step"]]
        assert st["ts"] <= q["ts"] and q["ts"] + q["dur"] <= st["ts"] + st["dur"] + 1e-6, (q, st)
    # slices of one rank do not go back in time: layer slices are laid end to end
    lay = sorted((e for e in mine if e["cat"] == "layer"), key=lambda e: e["ts"])
    for a, b in zip(lay, lay[1:]):
        assert b["ts"] + 1e-3 >= a["ts"] + a["dur"], (a, b)

tcols = [c.decode() if isinstance(c, bytes) else str(c) for c in f["steps/traffic"].attrs["columns"]]
traffic = f["steps/traffic"][()]
for p in range(P):
    cs = [e for e in ev if e["ph"] == "C" and e["name"] == f"bytes rank {p}"]
    assert len(cs) == S * L, (p, len(cs))
    for key, col in (("sent", "bytes_sent"), ("inter", "bytes_inter")):
        want = int(traffic[:, :, p, tcols.index(col)].sum())
        got = sum(e["args"][key] for e in cs)
        assert got == want, f"rank {p} {col}: counters {got}, file {want}"
nev = f["events"].shape[0] if "events" in f else 0
inst = [e for e in ev if e["ph"] == "i"]
assert len(inst) == nev, (len(inst), nev)

# clean failures leave nothing behind
bad = os.path.join(work, "trace_bad.json")
r = subprocess.run([analyze, h5, h5, "--trace", bad], capture_output=True, text=True)
assert r.returncode == 2 and "--trace" in r.stderr and not os.path.exists(bad), (r.returncode, r.stderr)
r = subprocess.run([analyze, os.path.join(work, "no-such.h5"), "--trace", bad], capture_output=True, text=True)
assert r.returncode == 1 and not os.path.exists(bad), (r.returncode, r.stderr)
print(f"trace ok: {len(ev)} events, {P} rank tracks, {checked} phase sums equal the file "
      f"(S={S}, L={L}), bytes counters equal steps/traffic, {nev} events")
