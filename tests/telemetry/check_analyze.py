#!/usr/bin/python3
"""check_analyze.py - moerun-analyze on the tel_roundtrip file, and on bad files.

Usage: check_analyze.py MOERUN_ANALYZE ROUNDTRIP.h5 WORKDIR

The round-trip file is the np 4 output of tel_roundtrip; the expected numbers below are
recomputed from the same formulas as tests/telemetry/tel_roundtrip.c (keep them in step).
Bad files (exit 1, one clear message, no crash): missing, not HDF5, truncated to half,
HDF5 but not moerun, moerun with a dataset removed, moerun with a wrong shape.
Usage errors exit 2. (The JSON report is {"runs": [run, ...]}; docs/analysis.md.)
"""
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

L, E, K, STEPS, P = 2, 5, 2, 8, 4
BLOCK_STEPS = [3, 1, 4]
RSTAT = {"load_entropy_norm": 3, "top1_prob": 4, "aux_loss": 9}
EVENT_NAMES = ["starved_expert", "dead_expert", "drop_rate", "low_entropy", "collapse",
               "logit_saturation"]

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def routed(s, l, e):
    return 100 + s * 31 + l * 7 + e * 3


def capacity(s, l):
    return 110 + s + l if s % 2 == 0 else -1


def dropped(s, l, e):
    c, r = capacity(s, l), routed(s, l, e)
    return r - c if c >= 0 and r > c else 0


def router(s, l, c):
    return s + 0.1 * l + 0.01 * c


def run(exe, *args):
    p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def expected():
    tot_r = sum(routed(s, l, e) for s in range(STEPS) for l in range(L) for e in range(E))
    tot_d = sum(dropped(s, l, e) for s in range(STEPS) for l in range(L) for e in range(E))
    # headline means are token-weighted over (step, layer) (docs/analysis.md "One definition
    # per number"): weight n[s][l] = pairs routed in that step and layer
    n = {(s, l): sum(routed(s, l, e) for e in range(E)) for s in range(STEPS) for l in range(L)}
    mean = {k: sum(router(s, l, c) * n[(s, l)] for s in range(STEPS) for l in range(L))
               / sum(n.values()) for k, c in RSTAT.items()}
    # the headline load entropy is pooled: each layer's loads summed over the steps, its
    # normalised entropy, averaged over the layers weighted by their pairs
    ent, wsum = 0.0, 0
    for l in range(L):
        x = np.array([sum(routed(s, l, e) for s in range(STEPS)) for e in range(E)], float)
        p = x[x > 0] / x.sum()
        ent += float(-(p * np.log(p)).sum() / np.log(E)) * x.sum()
        wsum += x.sum()
    mean["load_entropy_pooled"] = ent / wsum
    bytes_sent = sum(1000 * s + 100 * l + 10 * r for s in range(STEPS) for l in range(L)
                     for r in range(P))
    matrix = [[3 * (r * P + c) * 8 for c in range(P)] for r in range(P)]
    events = []
    step0 = 0
    for b, n in enumerate(BLOCK_STEPS):
        for i in range(b):
            events.append({"step": step0 + i, "layer": -1 if i % 2 else i % L,
                           "expert": (b + i) % E, "kind": EVENT_NAMES[(b + i) % len(EVENT_NAMES)],
                           "message": f"event {i} of block {b}"})
        step0 += n
    return tot_r, tot_d, mean, bytes_sent, matrix, events


def good_file(exe, path):
    rc, out, err = run(exe, path)
    check(rc == 0, f"text output exit {rc}: {err}")
    for word in ("routed", "dropped", "drop rate", "max/mean", "traffic matrix", "monitor events",
                 "low_entropy"):
        check(word in out, f"text output lacks {word!r}")
    rc, out, err = run(exe, path, "--json", "-")
    check(rc == 0, f"--json - exit {rc}: {err}")
    try:
        j = json.loads(out)["runs"][0]
    except (ValueError, KeyError, IndexError) as exc:
        check(False, f"--json output is not JSON: {exc}")
        return
    tot_r, tot_d, mean, bytes_sent, matrix, events = expected()
    check(j["routed"] == tot_r, f"routed {j['routed']} != {tot_r}")
    check(j["dropped"] == tot_d, f"dropped {j['dropped']} != {tot_d}")
    check(j["processed"] == tot_r - tot_d, f"processed {j['processed']} != {tot_r - tot_d}")
    check(abs(j["drop_rate"] - tot_d / tot_r) < 1e-12, "drop_rate")
    check(j["steps_completed"] == STEPS and j["steps_in_file"] == STEPS, "steps")
    check(j["status"] == "complete", f"status {j['status']}")
    check(j["ranks"] == P and j["nodes"] == 2, "ranks/nodes")
    check(j["hosts"] == ["host-0", "host-1"], f"hosts {j['hosts']}")
    check(j["config"]["experts"] == E and j["config"]["top_k"] == K and j["config"]["layers"] == L,
          "config numbers")
    check(j["config"]["workload"] == "zipf:1.2" and j["config"]["drop_policy"] == "probs",
          "config strings")
    check(abs(j["load_entropy_norm_per_step_mean"] - mean["load_entropy_norm"]) < 1e-9,
          f"load_entropy_norm_per_step_mean {j['load_entropy_norm_per_step_mean']} != "
          f"{mean['load_entropy_norm']}")
    for k, key in (("load_entropy_pooled", "load_entropy_norm_mean"),
                   ("top1_prob", "top1_prob_mean"), ("aux_loss", "aux_loss_mean")):
        check(abs(j[key] - mean[k]) < 1e-9, f"{key} {j[key]} != {mean[k]}")
    for l, lay in enumerate(j["layers_load"]):
        loads = [sum(routed(s, l, e) for s in range(STEPS)) for e in range(E)]
        check(lay["most_loaded"]["expert"] == int(np.argmax(loads)), f"layer {l} most loaded")
        check(lay["least_loaded"]["expert"] == int(np.argmin(loads)), f"layer {l} least loaded")
        check(abs(lay["max_mean_load"] - max(loads) / np.mean(loads)) < 1e-9, f"layer {l} max/mean")
    check(j["bytes_sent"] == bytes_sent, f"bytes_sent {j['bytes_sent']} != {bytes_sent}")
    check(j["traffic_matrix_bytes"] == matrix, "traffic matrix")
    check(len(j["events"]) == len(events), f"{len(j['events'])} events, want {len(events)}")
    for got, want in zip(j["events"], events):
        for key, val in want.items():
            check(got[key] == val, f"event {key}: {got[key]!r} != {val!r}")
    ph = j["phase_seconds"]
    check(list(ph) == ["gate", "counts", "dispatch", "expert", "combine", "total", "dispatch_inter",
                       "combine_inter", "counts_wait", "combine_wait"], "phase names")
    check(abs(ph["total"]["share_of_total"] - 1.0) < 1e-12, "total share")


def bad_file(exe, path, what, want_in_msg):
    rc, out, err = run(exe, path)
    check(rc == 1, f"{what}: exit {rc}, want 1 (stderr: {err.strip()})")
    check(err.startswith("moerun-analyze: ") and want_in_msg in err,
          f"{what}: message {err.strip()!r} lacks {want_in_msg!r}")
    check("Traceback" not in err and "HDF5-DIAG" not in err, f"{what}: noisy stderr {err!r}")
    print(f"{what}: exit {rc}: {err.strip()}")


def main():
    exe, good, work = sys.argv[1], sys.argv[2], sys.argv[3]
    good_file(exe, good)

    bad = os.path.join(work, "analyze_bad")
    shutil.rmtree(bad, ignore_errors=True)
    os.makedirs(bad)
    bad_file(exe, os.path.join(bad, "missing.h5"), "missing file", "No such file")
    text = os.path.join(bad, "text.h5")
    with open(text, "w") as fh:
        fh.write("this is not an HDF5 file\n" * 100)
    bad_file(exe, text, "non-HDF5 file", "not an HDF5 file")
    trunc = os.path.join(bad, "truncated.h5")
    with open(good, "rb") as fh:
        data = fh.read()
    with open(trunc, "wb") as fh:
        fh.write(data[: len(data) // 2])
    bad_file(exe, trunc, "truncated file", trunc)
    other = os.path.join(bad, "other.h5")
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(10)
    bad_file(exe, other, "foreign HDF5 file", "not a moerun telemetry file")
    nods = os.path.join(bad, "no_routed.h5")
    shutil.copy(good, nods)
    with h5py.File(nods, "a") as f:
        del f["steps/routed"]
    bad_file(exe, nods, "dataset removed", "steps/routed missing")
    shape = os.path.join(bad, "bad_shape.h5")
    shutil.copy(good, shape)
    with h5py.File(shape, "a") as f:
        f.attrs["experts"] = np.int64(4)
    bad_file(exe, shape, "shape mismatch", "want 4")

    rc, _, err = run(exe)
    check(rc == 2, f"no argument: exit {rc}, want 2")
    rc, _, err = run(exe, good, "--bogus")
    check(rc == 2 and "unknown option" in err, f"unknown option: exit {rc}, want 2")
    rc, out, _ = run(exe, "--help")
    check(rc == 0 and "usage" in out, "--help")

    if failures:
        print(f"check_analyze: {len(failures)} failures")
        return 1
    print("check_analyze: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
