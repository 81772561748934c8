#!/usr/bin/python3
"""check_smpi.py — a simulated run's telemetry against a real run's and against the model.

    check_smpi.py counts SIM.h5 REAL.h5 [LAYERS]
                                           routed/processed/dropped/capacity per step, layer,
                                           expert and the traffic (bytes, messages, rows) per
                                           step, layer, rank equal exactly, in the first LAYERS
                                           layers (default all: --sim-compute real; 1 for the
                                           model, which gates every layer on the step's tokens);
                                           SIM says simulated=smpi, REAL not
    check_smpi.py model SIM.h5            the model itself: routed = processed + dropped
                                           everywhere; every rank's expert phase equals the
                                           FLOPs of the rows it processed / sim_gflops (no MPI
                                           call inside that phase, so nothing else adds time);
                                           inter-node bytes > 0 when there are several nodes
Reads the files with h5py, independently of moerun's reader. Exit 0 ok, 1 mismatch.
"""
import sys

import h5py
import numpy as np


def attr(f, name):
    v = f.attrs[name]
    return v.decode() if isinstance(v, bytes) else v


def fail(msg):
    print("check_smpi: " + msg)
    sys.exit(1)


def counts(sim, real, layers=None):
    with h5py.File(sim, "r") as s, h5py.File(real, "r") as r:
        if attr(s, "simulated") != "smpi":
            fail("%s: simulated attribute is %r, not 'smpi'" % (sim, attr(s, "simulated")))
        if "simulated" in r.attrs:
            fail("%s: a real run carries a simulated attribute" % real)
        for ds in ("steps/routed", "steps/processed", "steps/dropped", "steps/capacity",
                   "steps/traffic"):
            a, b = s[ds][()], r[ds][()]
            if layers is not None:  # [step][layer]...
                a, b = a[:, :layers], b[:, :layers]
            if a.shape != b.shape:
                fail("%s: shapes differ: simulated %s, real %s" % (ds, a.shape, b.shape))
            if not np.array_equal(a, b):
                i = tuple(np.argwhere(a != b)[0])
                fail("%s%s: simulated %d, real %d" % (ds, list(i), a[i], b[i]))
        n = int(s["steps/routed"][()][:, :layers].sum())
        print("check_smpi: counts of %d routed pairs (%s) equal the real run's, per step, layer "
              "and expert, and so does the traffic per rank"
              % (n, "all layers" if layers is None else "first %d layer(s)" % layers))


def model(sim):
    with h5py.File(sim, "r") as f:
        if attr(f, "simulated") != "smpi":
            fail("not a simulated file")
        routed, proc, drop = (f["steps/" + k][()] for k in ("routed", "processed", "dropped"))
        if not np.array_equal(routed, proc + drop):
            fail("routed != processed + dropped")
        E, P = int(attr(f, "experts")), int(attr(f, "nranks"))
        d, ffn = int(attr(f, "d_model")), int(attr(f, "d_ffn"))
        gf = float(attr(f, "sim_gflops"))
        act = attr(f, "activation")
        owner = f["placement/expert_owner"][()]
        cols = [c.decode() if isinstance(c, bytes) else c for c in f["steps/phase_time"].attrs["columns"]]
        ph = f["steps/phase_time"][()]  # [S][L][P][phase]
        expert = ph[:, :, :, cols.index("expert")]
        rows = np.zeros(expert.shape)
        for e in range(E):
            rows[:, :, owner[e]] += proc[:, :, e]
        want = rows * (6.0 if act == "swiglu" else 4.0) * d * ffn / (gf * 1e9)
        err = np.abs(expert - want).max()
        if (np.abs(expert - want) > 1e-7 + 1e-4 * want).any():
            i = np.unravel_index(np.abs(expert - want).argmax(), want.shape)
            fail("expert phase %s: %.9g s, model %.9g s" % (list(i), expert[i], want[i]))
        tr = f["steps/traffic"][()]
        tcols = [c.decode() if isinstance(c, bytes) else c for c in f["steps/traffic"].attrs["columns"]]
        inter = tr[:, :, :, tcols.index("bytes_inter")].sum()
        if int(attr(f, "nnodes")) > 1 and inter <= 0:
            fail("several nodes but no inter-node bytes")
        tot = ph[:, :, :, cols.index("total")]
        if not (tot > 0).all():
            fail("a phase total is not positive")
        print("check_smpi: %d ranks, %d pairs: conservation holds; expert phase = FLOPs / %.4g "
              "GFLOP/s on every rank, step and layer (max error %.2g s); %d inter-node bytes"
              % (P, int(routed.sum()), gf, err, int(inter)))


if __name__ == "__main__":
    if len(sys.argv) in (4, 5) and sys.argv[1] == "counts":
        counts(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) == 5 else None)
    elif len(sys.argv) == 3 and sys.argv[1] == "model":
        model(sys.argv[2])
    else:
        print(__doc__)
        sys.exit(2)
