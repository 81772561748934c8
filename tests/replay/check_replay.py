#!/usr/bin/python3
"""check_replay.py - moerun --replay FILE against the log itself (docs/replay.md).

Usage: check_replay.py CASE MOERUN IMPORT ANALYZE MPIEXEC CHECK_TELEMETRY WORKDIR

Cases:
  counts   the whole log once at 2 ranks (flat) and 4 ranks (2 per node, hier, drops):
           steps/routed summed over steps equals the log's (layer, expert) counts, counted
           here from the JSON lines; the step count is ceil(tokens / (ranks x tokens));
           sampled routes/expert are the log's experts of the token in that slot; an
           imported .h5 of the same log replays to the same counts; the analyser reads the
           hier run without recommending --exchange hier, and shows dispatch_inter inside
           dispatch; with a shared expert the short last step's output at 2 ranks equals
           1 rank's (--output-dump, relative L2 <= 1e-5)
  tiled    --replay-tokens N: N tokens per rank per step for --steps steps, the log's tokens
           in order modulo its length; counts recomputed here
  sequence --sequence-field NAME (as moerun-import's): a log whose sequence field is not
           auto-detected stops with the duplicate-row error naming --sequence-field (exit 2,
           nothing written); with the flag its counts equal the log's; `none` on an
           auto-detected field gives the same error; the flag with a .h5 log is exit 2
  errors   more experts / other layers / other top-k than the log, a counts table, a
           missing file: exit 2 before compute, one message naming the option, no telemetry
"""
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np

failures = []
E, L, K = 8, 2, 2


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)
    return cond


def run(args, expect=None, env=None):
    p = subprocess.run(args, capture_output=True, text=True, timeout=240, env=env)
    if expect is not None:
        check(p.returncode == expect, f"{' '.join(args)}: exit {p.returncode}, want {expect}\n{p.stdout}{p.stderr}")
    return p


def write_log(path, seq_key="problem_id"):
    """Sequences of unequal length, token_idx restarting per sequence, a skewed expert 3;
    returns the tokens in the importer's order (sequence, token_idx) as [L][K] expert lists,
    best first."""
    rng = random.Random(5)
    toks = []
    with open(path, "w") as fh:
        for q in range(6):
            for t in range(29 + 13 * q):
                per_layer = []
                for l in range(L):
                    w = [rng.random() ** 3 for _ in range(E)]
                    w[3] += 0.4 * (l == 0)
                    ex = sorted(range(E), key=lambda e: -w[e])[:K]
                    s = sum(w[e] for e in ex)
                    # written in a shuffled order of experts: the importer sorts best first
                    order = list(range(K))
                    rng.shuffle(order)
                    fh.write(json.dumps({seq_key: f"q{q}", "token_idx": t, "layer": l,
                                         "experts": [ex[i] for i in order],
                                         "gating_probs": [w[ex[i]] / s for i in order]}) + "\n")
                    per_layer.append(ex)
                toks.append(per_layer)
    return toks


def counts_of(toks, idx):
    c = np.zeros((L, E), dtype=np.int64)
    for n in idx:
        for l in range(L):
            for e in toks[n][l]:
                c[l, e] += 1
    return c


def mpirun(ctx, np_, *args):
    return [ctx["mpiexec"], "-np", str(np_), ctx["moerun"], "--experts", str(E), "--top-k", str(K),
            "--layers", str(L), "--d-model", "16", "--d-ffn", "24", "--quiet", *args]


def replay_ok(ctx, np_, out, *args):
    p = run(mpirun(ctx, np_, "--telemetry", out, *args), expect=0)
    if p.returncode == 0:
        p2 = run([sys.executable, ctx["checker"], out], expect=0)
        check(" ok " in p2.stdout + " ", f"check_telemetry {out}: {p2.stdout}{p2.stderr}")
    return p


def case_counts(ctx):
    w = ctx["work"]
    log = os.path.join(w, "log.jsonl")
    toks = write_log(log)
    N = len(toks)
    want = counts_of(toks, range(N))
    # np 2 also carries a shared expert and dumps the last (short: 81 of 96 tokens) step's
    # output, compared below with 1 rank x 96 tokens: the shared expert's rows of a short
    # step are read where they were written (an offset bug gave 0.44 relative error)
    for np_, T, extra in ((2, 48, ["--capacity-factor", "0", "--shared-experts", "1",
                                   "--output-dump", os.path.join(w, "np2.bin")]),
                          (4, 20, ["--capacity-factor", "1.0", "--ranks-per-node", "2",
                                   "--exchange", "hier", "--route-samples", "40"])):
        out = os.path.join(w, f"np{np_}.h5")
        if replay_ok(ctx, np_, out, "--replay", log, "--tokens", str(T), *extra).returncode != 0:
            continue
        with h5py.File(out, "r") as f:
            got = f["steps/routed"][()]
            check(got.shape[0] == math.ceil(N / (np_ * T)),
                  f"np {np_}: {got.shape[0]} steps, want ceil({N} / ({np_} x {T}))")
            check(np.array_equal(got.sum(axis=0), want),
                  f"np {np_}: routed per layer and expert\n{got.sum(axis=0)}\n!= the log's\n{want}")
            check(int(f["steps/routed"][()].sum()) == N * L * K, f"np {np_}: every pair exactly once")
            # sampled routes: slot (step s, global token g = rank * T + t) is log token
            # (s * P + rank) * T + t, experts best first as the log's probabilities order them
            rs, rt, rx = f["routes/step"][()], f["routes/token"][()], f["routes/expert"][()]
            seen = 0
            for s, g, ex in zip(rs, rt, rx):
                n = (int(s) * np_ + int(g) // T) * T + int(g) % T
                if n < N:
                    seen += 1
                    check(ex.tolist() == toks[n], f"np {np_}: route of log token {n}: {ex.tolist()} != {toks[n]}")
                else:
                    check((ex == -1).all(), f"np {np_}: slot past the log's end holds {ex.tolist()}")
            check(seen > 0, f"np {np_}: no sampled route checked")
        if np_ == 4:
            p = run([ctx["ana"], out, "--json", "-"], expect=0)
            j = json.loads(p.stdout)["runs"][0]
            recs = [r["id"] for r in j.get("recommendations", [])]
            check("hier_exchange" not in recs, f"hier run: recommends --exchange hier: {recs}")
            ph = j.get("phase_seconds", {})
            check(ph.get("dispatch_inter", {}).get("parent") == "dispatch"
                  and ph.get("combine_inter", {}).get("parent") == "combine", f"phase parents {ph}")
            top = sum(v["share_of_total"] for k, v in ph.items() if "parent" not in v and k != "total")
            check(top <= 1 + 1e-9, f"top-level phase shares add to {top} > 1")
            md = run([ctx["ana"], out, "--markdown", "-"], expect=0).stdout
            # phase names come from the file: Markdown escapes them (dispatch\_inter)
            check(re.search(r"of which dispatch\\?_inter", md) is not None and "of dispatch" in md,
                  "Markdown: sub-phase not inside its phase")
            check(re.search(r"\bnan\b", md, re.I) is None, "Markdown of a replay holds nan")
    ref = os.path.join(w, "np1.bin")
    if run(mpirun(ctx, 1, "--replay", log, "--tokens", "96", "--capacity-factor", "0",
                  "--shared-experts", "1", "--output-dump", ref,
                  "--telemetry", os.path.join(w, "np1.h5")), expect=0).returncode == 0 \
            and os.path.exists(os.path.join(w, "np2.bin")):
        a = np.fromfile(os.path.join(w, "np2.bin"), dtype=np.float32)
        b = np.fromfile(ref, dtype=np.float32)
        check(a.size == b.size == 96 * 16, f"output dumps hold {a.size} and {b.size} floats, want {96 * 16}")
        if a.size == b.size:
            err = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
            check(np.isfinite(a).all() and err <= 1e-5,
                  f"replay with a shared expert, short last step: 2 ranks vs 1 rank relative error {err:.3g} > 1e-5")
    # an imported telemetry file of the same log replays to the same counts
    h5 = os.path.join(w, "log.h5")
    if run([ctx["imp"], log, "-o", h5, "--experts", str(E)], expect=0).returncode == 0:
        out = os.path.join(w, "from_h5.h5")
        if replay_ok(ctx, 2, out, "--replay", h5, "--tokens", "64", "--capacity-factor", "0").returncode == 0:
            with h5py.File(out, "r") as f:
                check(np.array_equal(f["steps/routed"][()].sum(axis=0), want), "replay of the imported .h5: counts differ")


def case_tiled(ctx):
    w = ctx["work"]
    log = os.path.join(w, "log.jsonl")
    toks = write_log(log)
    N, P, T, S = len(toks), 2, 100, 3
    out = os.path.join(w, "tiled.h5")
    if replay_ok(ctx, P, out, "--replay", log, "--replay-tokens", str(T), "--steps", str(S),
                 "--capacity-factor", "0").returncode != 0:
        return
    want = counts_of(toks, [i % N for i in range(S * P * T)])
    with h5py.File(out, "r") as f:
        got = f["steps/routed"][()]
        check(got.shape[0] == S and int(f.attrs["tokens_per_rank"]) == T, f"tiled: {got.shape[0]} steps, T {f.attrs['tokens_per_rank']}")
        check(np.array_equal(got.sum(axis=0), want), f"tiled: routed\n{got.sum(axis=0)}\n!= \n{want}")


def case_errors(ctx):
    w = ctx["work"]
    log = os.path.join(w, "log.jsonl")
    write_log(log)
    counts = os.path.join(w, "counts.csv")
    with open(counts, "w") as fh:
        fh.write("layer,expert,count\n0,1,5\n1,2,4\n")
    # singleton MPI (no mpirun): the errors come before any communication
    base = [ctx["moerun"], "--d-model", "16", "--d-ffn", "24", "--quiet"]
    for args, text in (
            (["--experts", "4", "--top-k", "2", "--layers", "2", "--replay", log], "--experts 8"),
            (["--experts", "8", "--top-k", "2", "--layers", "3", "--replay", log], "--layers 2"),
            (["--experts", "8", "--top-k", "1", "--layers", "2", "--replay", log], "--top-k 2"),
            (["--experts", "8", "--top-k", "2", "--layers", "2", "--replay", counts], "counts table has no per-token routes"),
            (["--experts", "8", "--top-k", "2", "--layers", "2", "--replay", os.path.join(w, "nope.jsonl")], "nope.jsonl")):
        out = os.path.join(w, "err.h5")
        p = run(base + args + ["--telemetry", out], expect=2)
        check(text in p.stderr and p.stderr.count("moerun: error") == 1,
              f"errors {args[-1]}: {p.stderr!r} lacks {text!r} (once)")
        check(not os.path.exists(out), f"errors {args}: telemetry written")


def case_sequence(ctx):
    w = ctx["work"]
    log = os.path.join(w, "conv.jsonl")
    toks = write_log(log, "conv")  # "conv" is not among the auto-detected names
    want = counts_of(toks, range(len(toks)))
    base = [ctx["moerun"], "--experts", str(E), "--top-k", str(K), "--layers", str(L),
            "--d-model", "16", "--d-ffn", "24", "--quiet"]
    out = os.path.join(w, "err.h5")
    auto_log = os.path.join(w, "auto.jsonl")
    write_log(auto_log)
    for args in (["--replay", log], ["--replay", auto_log, "--sequence-field", "none"]):
        p = run(base + args + ["--telemetry", out], expect=2)
        check(p.stderr.count("moerun: error") == 1 and "duplicate row for step 0" in p.stderr
              and "--sequence-field NAME" in p.stderr and "token_idx 0, layer 0" in p.stderr,
              f"sequence {args}: {p.stderr!r}")
        check(not os.path.exists(out), f"sequence {args}: telemetry written")
    ok = os.path.join(w, "conv.h5")
    if replay_ok(ctx, 2, ok, "--replay", log, "--sequence-field", "conv", "--tokens", "64",
                 "--capacity-factor", "0").returncode == 0:
        with h5py.File(ok, "r") as f:
            got = f["steps/routed"][()].sum(axis=0)
            check(np.array_equal(got, want), f"--sequence-field conv: routed\n{got}\n!= the log's\n{want}")
            cfg = f.attrs["config"]
            cfg = cfg.decode() if isinstance(cfg, bytes) else str(cfg)
            check(re.search(r"^sequence_field = conv$", cfg, re.M) is not None,
                  "config attribute lacks sequence_field = conv")
    # the flag on an imported telemetry file is an error, not silently ignored
    h5 = os.path.join(w, "conv_imported.h5")
    if run([ctx["imp"], log, "-o", h5, "--experts", str(E), "--sequence-field", "conv"], expect=0).returncode == 0:
        p = run(base + ["--replay", h5, "--sequence-field", "conv", "--telemetry", out], expect=2)
        check("--sequence-field conv" in p.stderr and "telemetry file" in p.stderr
              and p.stderr.count("moerun: error") == 1, f"sequence on .h5: {p.stderr!r}")
        check(not os.path.exists(out), "sequence on .h5: telemetry written")


CASES = {"sequence": case_sequence, "counts": case_counts, "tiled": case_tiled, "errors": case_errors}


def main(argv):
    if len(argv) != 8 or argv[1] not in CASES:
        print(__doc__, file=sys.stderr)
        return 2
    ctx = dict(zip(("moerun", "imp", "ana", "mpiexec", "checker", "work"), argv[2:]))
    shutil.rmtree(ctx["work"], ignore_errors=True)
    os.makedirs(ctx["work"])
    CASES[argv[1]](ctx)
    if failures:
        print(f"check_replay {argv[1]}: FAILED ({len(failures)} problems)")
        return 1
    print(f"check_replay {argv[1]}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
