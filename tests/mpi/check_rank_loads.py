#!/usr/bin/python3
"""check_rank_loads.py — the rows each rank computed follow the placement's replica rule.

Usage: check_rank_loads.py FILE.h5 RANKS_PER_NODE

Needs a run that recorded every token's route (--route-samples >= global tokens). From
placement/expert_ranks and routes/{step,token,expert,kept} alone it recomputes, for every
step, layer and rank, how many kept (token, expert) pairs the rank must have computed under
the rule of docs/placement.md (replicas on the token's node if any, else all replicas; the
pair of global token g takes candidate g mod count, candidates in file order) and compares
with steps/traffic column rows_in, exactly. Also: a rank that holds no expert in a layer
computed nothing, and every replica of a replicated expert that could be chosen got rows
somewhere in the run.
"""
import sys

import h5py
import numpy as np


def main(path, rpn):
    f = h5py.File(path, "r")
    a = f.attrs
    P, L, T = int(a["nranks"]), int(a["layers"]), int(a["tokens_per_rank"])
    er = f["placement/expert_ranks"][()]
    step = f["routes/step"][()]
    token = f["routes/token"][()]
    expert = f["routes/expert"][()]
    kept = f["routes/kept"][()]
    steps = f["steps/step"][()]
    cols = [c.decode() if isinstance(c, bytes) else str(c) for c in f["steps/traffic"].attrs["columns"]]
    rows_in = f["steps/traffic"][()][:, :, :, cols.index("rows_in")]
    G = P * T
    if len(token) != len(steps) * G:
        print(f"check_rank_loads: {path}: {len(token)} routes for {len(steps)} steps x {G} tokens; "
              "run with --route-samples >= global tokens")
        return 1
    want = np.zeros((len(steps), L, P), dtype=np.int64)
    used = set()
    row_of = {int(s): i for i, s in enumerate(steps)}
    for i in range(len(token)):
        s, g = row_of[int(step[i])], int(token[i])
        node = (g // T) // rpn
        for l in range(L):
            for j in range(expert.shape[2]):
                if not kept[i, l, j]:
                    continue
                e = int(expert[i, l, j])
                reps = [int(x) for x in er[l, e] if x >= 0]
                near = [r for r in reps if r // rpn == node]
                cand = near if near else reps
                r = cand[g % len(cand)]
                want[s, l, r] += 1
                used.add((l, e, r))
    bad = np.argwhere(want != rows_in)
    if len(bad):
        s, l, r = bad[0]
        print(f"check_rank_loads: {path}: step {steps[s]} layer {l} rank {r}: rows_in "
              f"{rows_in[s, l, r]}, the replica rule gives {want[s, l, r]} ({len(bad)} places)")
        return 1
    for l in range(L):
        holders = {int(x) for x in er[l].ravel() if x >= 0}
        idle = [r for r in range(P) if r not in holders]
        if idle and rows_in[:, l, idle].sum() != 0:
            print(f"check_rank_loads: {path}: layer {l}: ranks {idle} hold no expert but computed rows")
            return 1
    nrep = sum(1 for l in range(L) for e in range(er.shape[1]) if (er[l, e] >= 0).sum() > 1)
    print(f"check_rank_loads: {path}: ok (rows_in of {P} ranks x {L} layers x {len(steps)} steps "
          f"match the replica rule; {nrep} replicated experts, {len(used)} (layer, expert, rank) "
          f"used; max/mean rank rows {rows_in.sum(axis=(0, 1)).max() / rows_in.sum(axis=(0, 1)).mean():.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
