#!/usr/bin/python3
"""fixture.py - tiny moerun telemetry files (schema 1, docs/telemetry.md) with known counts.

Written with h5py, independently of the C writer, so the analyser is checked against
numbers computed by hand (see check_analyze_report.py for the arithmetic).

Shape: S=4 steps, L=2 layers, E=4 experts, top_k 2, P=2 ranks on 2 nodes, 4 tokens per rank
(16 pairs per step and layer), capacity factor 1.0 (capacity 4), d_model 4, d_ffn 8, gelu.
  layer 0 routes 8, 4, 4, 0 pairs to experts 0..3 every step (expert 3 dead), drops 4;
  layer 1 routes 4, 4, 4, 4 (even), drops 0.
Variants: "full", "collapse" (16 steps; layer 1 even until step 5, then 8, 6, 1, 1 pairs:
collapse from step 6), "empty" (0 steps), "minimal" (only steps/step, steps/routed and the
required attributes), "newer" (schema_version 3), "badcols" (traffic columns attribute
names 6 columns for 4).
"""
import sys

import h5py
import numpy as np

S, L, E, K, P, T = 4, 2, 4, 2, 2, 4
RSTAT = ["gate_entropy", "gate_entropy_norm", "load_entropy", "load_entropy_norm", "top1_prob",
         "top1_top2_margin", "logit_mean", "logit_std", "logit_max", "aux_loss", "z_loss"]
PHASES = ["gate", "counts", "dispatch", "expert", "combine", "total"]
PHASE_S = [0.001, 0.001, 0.002, 0.004, 0.002, 0.010]
TRAFFIC = ["bytes_sent", "bytes_recv", "msgs_sent", "msgs_recv", "bytes_intra", "bytes_inter"]
TRAFFIC_V = [1000, 1000, 4, 4, 300, 700]
EVENT_NAMES = ["starved_expert", "dead_expert", "drop_rate", "low_entropy", "collapse",
               "logit_saturation"]
LOADS = [[8, 4, 4, 0], [4, 4, 4, 4]]
# sampled routes: 4 tokens of step 0, global ids 0, 1 (rank 0) and 4, 5 (rank 1)
ROUTE_TOKENS = [0, 1, 4, 5]
ROUTE_EXPERTS = [[[0, 1], [0, 2]], [[0, 2], [1, 3]], [[0, 1], [2, 3]], [[1, 2], [3, 0]]]
ROUTE_WEIGHTS = [0.8, 0.2]


def loads(s, l, variant):
    if variant == "collapse" and l == 1 and s >= 6:
        return [8, 6, 1, 1]
    return LOADS[l]


def drops(s, l, variant):
    return [max(0, x - 4) for x in loads(s, l, variant)]


def router_row(s, l):
    v = np.zeros(len(RSTAT))
    v[RSTAT.index("load_entropy_norm")] = 0.75 if l == 0 else 1.0
    v[RSTAT.index("top1_prob")] = 0.5 + 0.1 * s
    v[RSTAT.index("top1_top2_margin")] = 0.2 + 0.05 * s
    v[RSTAT.index("logit_mean")] = 0.1 * s
    v[RSTAT.index("logit_std")] = 1.0 + 0.1 * s
    v[RSTAT.index("logit_max")] = 2.0 + s + l
    v[RSTAT.index("aux_loss")] = (1.5 if l == 0 else 1.0) + 0.01 * s
    v[RSTAT.index("z_loss")] = 0.5 * (2.0 + s + l) + 0.01 * (s % 2)
    return v


def dset(f, path, data, units="", desc="", maxshape=True):
    d = f.create_dataset(path, data=data,
                         maxshape=(None,) + data.shape[1:] if maxshape else None,
                         chunks=(max(1, data.shape[0]),) + data.shape[1:] if maxshape else None)
    d.attrs["units"] = units
    d.attrs["description"] = desc
    return d


def write(path, variant="full"):
    steps = 0 if variant == "empty" else 16 if variant == "collapse" else S
    with h5py.File(path, "w") as f:
        f.attrs["schema_version"] = np.int64(3 if variant == "newer" else 1)
        for k, v in (("experts", E), ("top_k", K), ("layers", L), ("nranks", P), ("nnodes", 2),
                     ("steps_completed", steps)):
            f.attrs[k] = np.int64(v)
        routed = np.array([[loads(s, l, variant) for l in range(L)] for s in range(steps)],
                          dtype=np.int64).reshape(steps, L, E)
        dset(f, "steps/step", np.arange(steps, dtype=np.int64))
        dset(f, "steps/routed", routed)
        if variant == "minimal":
            f.attrs["status"] = "complete"
            return
        for k, v in (("d_model", 4), ("d_ffn", 8), ("tokens_per_rank", T), ("flush_interval", 4),
                     ("route_samples", 2), ("seed", 1), ("steps_requested", S)):
            f.attrs[k] = np.int64(v)
        f.attrs["capacity_factor"] = 1.0
        f.attrs["temperature"] = 1.0
        for k, v in (("moerun_version", "fixture"), ("status", "complete"),
                     ("start_time", "2026-01-01T00:00:00Z"), ("end_time", "2026-01-01T00:00:01Z"),
                     ("drop_policy", "position"), ("workload", "fixture"), ("exchange", "flat"),
                     ("placement", "contiguous"), ("activation", "gelu"),
                     ("telemetry_mode", "gather"), ("config", "")):
            f.attrs[k] = v
        dropped = np.array([[drops(s, l, variant) for l in range(L)] for s in range(steps)],
                           dtype=np.int64).reshape(steps, L, E)
        dset(f, "steps/processed", routed - dropped)
        dset(f, "steps/dropped", dropped)
        dset(f, "steps/dropped_capacity", dropped)
        dset(f, "steps/capacity", np.full((steps, L), 4, dtype=np.int64))
        rt = np.array([[router_row(s, l) for l in range(L)] for s in range(steps)]).reshape(
            steps, L, len(RSTAT))
        dset(f, "steps/router", rt).attrs["columns"] = RSTAT
        ph = np.tile(np.array(PHASE_S), (steps, L, P, 1)).reshape(steps, L, P, len(PHASES))
        dset(f, "steps/phase_time", ph, "s").attrs["columns"] = PHASES
        tr = np.tile(np.array(TRAFFIC_V, dtype=np.int64), (steps, L, P, 1)).reshape(
            steps, L, P, len(TRAFFIC))
        if variant == "badcols":
            tr = tr[..., :4]
        dset(f, "steps/traffic", tr).attrs["columns"] = TRAFFIC
        n = 0 if variant == "empty" else len(ROUTE_TOKENS)
        dset(f, "routes/step", np.zeros(n, dtype=np.int64))
        dset(f, "routes/token", np.array(ROUTE_TOKENS[:n], dtype=np.int64))
        # the fixture declares its route tokens vocabulary ids (docs/analysis.md), so --vocab
        # decodes them; a run's own routes/token is a position and is never decoded
        f.attrs["token_ids"] = "vocabulary"
        dset(f, "routes/expert", np.array(ROUTE_EXPERTS[:n], dtype=np.int32).reshape(n, L, K))
        dset(f, "routes/weight", np.tile(np.array(ROUTE_WEIGHTS, dtype=np.float32),
                                         (n, L, 1)).reshape(n, L, K))
        dset(f, "routes/kept", np.ones((n, L, K), dtype=np.uint8))
        ev_t = np.dtype([("step", "<i8"), ("layer", "<i4"), ("expert", "<i4"),
                         ("kind", h5py.enum_dtype({k: i for i, k in enumerate(EVENT_NAMES)},
                                                  basetype="<i4")),
                         ("value", "<f8"), ("threshold", "<f8"), ("message", "S160")])
        ev = np.zeros(1 if steps else 0, dtype=ev_t)
        if steps:
            ev[0] = (1, 0, 3, 1, 0.0, 0.0, b"expert 3 of layer 0 received no tokens")
        d = f.create_dataset("events", data=ev, maxshape=(None,), chunks=(64,))
        d.attrs["kind_names"] = EVENT_NAMES
        cs = np.zeros((L, E, E), dtype=np.int64)
        for tok in ROUTE_EXPERTS[:n]:
            for l in range(L):
                a, b = tok[l]
                cs[l, a, a] += 1
                cs[l, b, b] += 1
                cs[l, a, b] += 1
                cs[l, b, a] += 1
        f.create_dataset("accumulated/coselect", data=cs)
        f.create_dataset("accumulated/traffic_matrix",
                         data=np.array([[10, 100], [200, 20]], dtype=np.int64))
        f["accumulated"].attrs["steps"] = np.int64(steps)
        f.create_dataset("topology/hostname", data=np.array([b"node-a", b"node-b"], dtype="S64"))
        f.create_dataset("topology/node", data=np.array([0, 1], dtype=np.int32))
        f.create_dataset("topology/local_rank", data=np.array([0, 0], dtype=np.int32))
        f.create_dataset("topology/cpuset", data=np.array([b"0", b"1"], dtype="S64"))
        f.create_dataset("topology/numa_node", data=np.array([0, 0], dtype=np.int32))
        f.create_dataset("placement/expert_owner", data=np.array([0, 0, 1, 1], dtype=np.int32))


if __name__ == "__main__":
    write(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "full")
