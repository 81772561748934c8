#!/usr/bin/python3
"""check_proof.py — measured values of runs against moerun-place's predictions.

Usage: check_proof.py PLAN.json BEFORE.h5 AFTER_HIER.h5 [AFTER_FLAT.h5] [--tolerance 0.10]

From the telemetry of each run, per layer: rank load = steps/traffic rows_in summed over
steps, its max/mean; inter-node bytes per step = bytes_inter summed over ranks and steps,
divided by the steps. Checks, with the plan's JSON (moerun-place --json):
  - BEFORE (the measured run, hier) matches the plan's "before" predictions and AFTER_HIER
    (the rerun with the plan) its "after" predictions, max/mean and hier bytes per layer,
    each within the tolerance (relative);
  - AFTER_FLAT, if given, the "after" flat bytes;
  - the rerun's max/mean (mean over layers) and hier inter-node bytes are below the first run's.
Prints a table of measured vs predicted; exit 1 on any failure.
"""
import json
import sys

import h5py
import numpy as np


def measure(path):
    f = h5py.File(path, "r")
    cols = [c.decode() if isinstance(c, bytes) else str(c) for c in f["steps/traffic"].attrs["columns"]]
    t = f["steps/traffic"][()]
    rows = t[:, :, :, cols.index("rows_in")].sum(axis=0).astype(float)       # [L][P]
    inter = t[:, :, :, cols.index("bytes_inter")].sum(axis=(0, 2)) / t.shape[0]  # [L]
    return rows.max(axis=1) / rows.mean(axis=1), inter


def main(argv):
    tol = 0.10
    if "--tolerance" in argv:
        i = argv.index("--tolerance")
        tol = float(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    plan = json.load(open(argv[0]))
    before_mm, before_b = measure(argv[1])
    after_mm, after_b = measure(argv[2])
    flat_b = measure(argv[3])[1] if len(argv) > 3 else None
    bad = []

    def cmp(what, meas, pred):
        rel = abs(meas - pred) / abs(pred) if pred else abs(meas)
        ok = rel <= tol
        print(f"  {what:<34} measured {meas:14.3f} predicted {pred:14.3f} ({100 * rel:5.2f} %) {'ok' if ok else 'FAIL'}")
        if not ok:
            bad.append(what)

    for l, ly in enumerate(plan["layers"]):
        cmp(f"layer {l} before max/mean", before_mm[l], ly["before"]["max_mean"])
        cmp(f"layer {l} before hier bytes/step", before_b[l], ly["before"]["hier_inter_bytes_per_step"])
        cmp(f"layer {l} after max/mean", after_mm[l], ly["after"]["max_mean"])
        cmp(f"layer {l} after hier bytes/step", after_b[l], ly["after"]["hier_inter_bytes_per_step"])
        if flat_b is not None:
            cmp(f"layer {l} after flat bytes/step", flat_b[l], ly["after"]["flat_inter_bytes_per_step"])
    mb, ma = before_mm.mean(), after_mm.mean()
    bb, ba = before_b.sum(), after_b.sum()
    print(f"  rank max/mean {mb:.3f} -> {ma:.3f}; hier inter-node bytes/step {bb:.0f} -> {ba:.0f} "
          f"({ba / bb:.3f}x)")
    if not ma < mb:
        bad.append("max/mean did not fall")
    if not ba < bb:
        bad.append("inter-node bytes did not fall")
    if bad:
        print("check_proof: FAIL: " + "; ".join(bad))
        return 1
    print("check_proof: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
