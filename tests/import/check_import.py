#!/usr/bin/python3
"""check_import.py - moerun-import on hand-written fixtures, checked against hand-computed and
independently recomputed numbers (docs/import.md).

Usage: check_import.py CASE MOERUN_IMPORT MOERUN_ANALYZE FIXTURES CHECK_TELEMETRY WORKDIR

Cases:
  formats            small.jsonl, small.csv (list columns), small_cols.csv (expert_i columns,
                     quoted fields, CRLF, a quoted newline) give the hand-computed counts,
                     labels and routes; check_telemetry.py passes; moerun-analyze --json
                     reports the same routed counts and lists the absent sections as missing
  softmax            --probs softmax: top1_prob and margin equal the hand-computed means;
                     without it the same file is refused (sum != 1) naming line and field
  counts             per-expert counts with a domain column: routed, domain table, no routes
  bad_rows           malformed JSON, expert out of range, missing field, CSV column count,
                     bad probabilities, duplicates, empty input: exit 1 with FILE:LINE and
                     the field; with --skip-bad the counts equal the good rows' counts
  no_partial_output  a failed import leaves no output and no temporary file, and leaves an
                     existing output untouched
  usage              usage errors exit 2 and name the flag
  generated          a larger deterministic log (sparse steps, labels, route sampling)
                     against an independent recomputation
"""
import csv
import glob
import io
import json
import re
import os
import random
import shutil
import subprocess
import sys

import h5py
import numpy as np

failures = []

# small.*: E=4, k=2, L=2; hand-computed from the fixture, per step x layer x expert
HAND_ROUTED = np.array([[[2, 3, 1, 0], [1, 0, 3, 2]],
                        [[1, 3, 0, 2], [0, 1, 2, 1]]])
HAND_LABEL_ROWS = {"dataset": {"wiki": 7, "code": 4}}
HAND_ROUTES = 5  # tokens 0..4 have both layers; token 5 only layer 0


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)
    return cond


def run(args, expect=None):
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if expect is not None:
        check(p.returncode == expect,
              f"{' '.join(args)}: exit {p.returncode}, want {expect}\n{p.stdout}{p.stderr}")
    return p


# --------------------------------------------------------------- independent parser --------

def parse_rows(path, fmt):
    """(line, dict) for every data row, with the same field names as the importer."""
    out = []
    if fmt == "jsonl":
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    out.append((n, json.loads(line)))
        return out
    with open(path, newline="", encoding="utf-8") as fh:
        text = fh.read()
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader)]
    line = 2
    for rec in reader:
        start = reader.line_num  # line after the record; recomputed below for multi-line
        row = dict(zip(header, [x.strip() for x in rec]))
        d = {"layer": int(row["layer"])}
        if "step" in row:
            d["step"] = int(row["step"])
        if fmt == "counts":
            d["expert"] = int(row["expert"])
            d["count"] = int(row["count"])
            if row.get("domain"):
                d["domain"] = row["domain"]
        else:
            if "token_idx" in row:
                d["token_idx"] = int(row["token_idx"])
            if "experts" in row:
                d["experts"] = [int(x) for x in row["experts"].split(";")]
                d["gating_probs"] = [float(x) for x in row["gating_probs"].split(";")]
            else:
                k = len([h for h in header if h.startswith("expert_")])
                d["experts"] = [int(row[f"expert_{i}"]) for i in range(k)]
                d["gating_probs"] = [float(row[f"prob_{i}"]) for i in range(k)]
            for key in ("dataset", "request_id", "note"):
                if row.get(key):
                    d[key] = row[key]
        out.append((line, d))
        line = start + 1
    return out


def expected(rows, E, L=None):
    """steps/routed and label row counts recomputed from parsed rows."""
    steps = sorted({d.get("step", 0) for _, d in rows})
    L = L or max(d["layer"] for _, d in rows) + 1
    routed = np.zeros((len(steps), L, E), dtype=np.int64)
    labels = {}
    for _, d in rows:
        s = steps.index(d.get("step", 0))
        if "experts" in d:
            for e in d["experts"]:
                routed[s, d["layer"], e] += 1
        else:
            routed[s, d["layer"], d["expert"]] += d["count"]
        for key in ("dataset", "domain"):
            if key in d:
                labels.setdefault(key, {}).setdefault(d[key], 0)
                labels[key][d[key]] += 1
    return steps, routed, labels


# --------------------------------------------------------------- helpers --------------------

def import_ok(ctx, src, out, *extra):
    p = run([ctx["imp"], src, "-o", out, *extra], expect=0)
    if p.returncode == 0:
        p2 = run([sys.executable, ctx["checker"], out], expect=0)
        check("ok" in p2.stdout, f"check_telemetry on {out}: {p2.stdout}{p2.stderr}")
    return p


def analyze(ctx, path):
    """The run object of moerun-analyze --json - (docs/analysis.md: {"runs": [RUN]})."""
    p = run([ctx["ana"], path, "--json", "-"], expect=0)
    try:
        j = json.loads(p.stdout, parse_constant=lambda c: check(False, f"{path}: analyze JSON holds {c}"))
    except ValueError:
        check(False, f"moerun-analyze --json on {path} is not JSON: {p.stdout[:200]}")
        return {}
    t = run([ctx["ana"], path], expect=0).stdout  # terminal summary: absent numbers say "missing"
    check(re.search(r"\b(nan|-?inf)\b", t) is None, f"{path}: analyze prints a NaN/inf number: {t}")
    runs = j.get("runs", [])
    check(len(runs) == 1, f"{path}: analyze --json has {len(runs)} runs, want 1")
    return runs[0] if runs else {}


def labels_in(f):
    out = {}
    if "import/labels" in f:
        for _, g in f["import/labels"].items():
            key = g.attrs["key"]
            key = key.decode() if isinstance(key, bytes) else key
            vals = [v.decode() for v in g["values"][()]]
            out[key] = dict(zip(vals, (int(x) for x in g["rows"][()])))
    return out


def compare_analyze(ctx, path, routed):
    j = analyze(ctx, path)
    check(j.get("routed") == int(routed.sum()),
          f"{path}: analyze routed {j.get('routed')} != fixture {int(routed.sum())}")
    per_layer = routed.sum(axis=0)
    got = [x.get("routed") for x in j.get("layers_load", [])]
    check(got == [int(x) for x in per_layer.sum(axis=1)],
          f"{path}: analyze per-layer routed {got} != {per_layer.sum(axis=1).tolist()}")
    for l, x in enumerate(j.get("layers_load", [])):
        hi = int(np.argmax(per_layer[l]))
        check(x["most_loaded"]["expert"] == hi and x["most_loaded"]["routed"] == int(per_layer[l, hi]),
              f"{path}: layer {l} most loaded {x['most_loaded']} != expert {hi} ({per_layer[l, hi]})")
    # utilisation: per-layer token counts per expert equal the fixture's
    lay = j.get("analyses", {}).get("utilisation", {}).get("layers", [])
    check([x.get("tokens") for x in lay] == [[int(v) for v in row] for row in per_layer],
          f"{path}: analyze utilisation tokens {[x.get('tokens') for x in lay]} != {per_layer.tolist()}")
    check(j.get("source", "").startswith("import:") and j.get("imported") is True,
          f"{path}: source {j.get('source')} imported {j.get('imported')}")
    an = j.get("analyses", {})
    com = an.get("communication", {})
    check(com.get("status") == "missing" and "steps/phase_time" in com.get("missing", "")
          and "steps/traffic" in com.get("missing", ""),
          f"{path}: analyze communication not missing: {com}")
    check(an.get("compute", {}).get("status") == "missing", f"{path}: analyze compute not missing")
    check(j.get("hosts") == [] and j.get("ranks") is None and j.get("nodes") is None,
          f"{path}: analyze invents hosts/ranks: {j.get('hosts')} {j.get('ranks')} {j.get('nodes')}")
    check(not j.get("phase_seconds") and j.get("bytes_sent") is None,
          f"{path}: analyze invents phases/traffic")
    return j


# --------------------------------------------------------------- cases ----------------------

def case_formats(ctx):
    fx, w = ctx["fx"], ctx["work"]
    for name, fmt in (("small.jsonl", "jsonl"), ("small.csv", "csv"), ("small_cols.csv", "csv")):
        src, out = os.path.join(fx, name), os.path.join(w, name + ".h5")
        if import_ok(ctx, src, out, "--experts", "4").returncode != 0:
            continue
        rows = parse_rows(src, fmt)
        steps, routed, labels = expected(rows, 4)
        check(np.array_equal(routed, HAND_ROUTED), f"{name}: independent recount != hand counts")
        with h5py.File(out, "r") as f:
            got = f["steps/routed"][()]
            check(np.array_equal(got, HAND_ROUTED), f"{name}: steps/routed\n{got}\n!= hand\n{HAND_ROUTED}")
            check(f.attrs["source"] == f"import:{fmt}", f"{name}: source {f.attrs['source']}")
            check(list(f["import/step_value"][()]) == [0, 1], f"{name}: step_value")
            check(f["routes/expert"].shape == (HAND_ROUTES, 2, 2), f"{name}: routes shape {f['routes/expert'].shape}")
            # token 1 layer 1: experts [3, 2] probs [0.9, 0.1]; token 2 layer 0: [0, 1]
            check(f["routes/token"][()].tolist() == [0, 1, 2, 3, 4], f"{name}: routes/token")
            check(f["routes/expert"][1, 1].tolist() == [3, 2], f"{name}: routes/expert[1,1]")
            check(abs(float(f["routes/weight"][1, 1, 0]) - 0.9) < 1e-6, f"{name}: routes/weight[1,1,0]")
            check("routes/kept" not in f and "steps/processed" not in f,
                  f"{name}: kept/processed written without --assume-dropless")
            lab = labels_in(f)
            check(lab.get("dataset") == HAND_LABEL_ROWS["dataset"],
                  f"{name}: labels dataset {lab.get('dataset')} != {HAND_LABEL_ROWS['dataset']}")
            g = [g for _, g in f["import/labels"].items() if g.attrs["key"] == "dataset"][0]
            vals = [v.decode() for v in g["values"][()]]
            check(int(g["routed"][vals.index("code")].sum()) == 8,
                  f"{name}: pairs routed by 'code' rows {int(g['routed'][vals.index('code')].sum())} != 8")
            r = f["steps/router"][()]
            cols = [c.decode() if isinstance(c, bytes) else c for c in f["steps/router"].attrs["columns"]]
            le = cols.index("load_entropy")
            p = HAND_ROUTED[0, 0] / HAND_ROUTED[0, 0].sum()
            h = -sum(x * np.log(x) for x in p if x > 0)
            check(abs(r[0, 0, le] - h) < 1e-12, f"{name}: load_entropy {r[0, 0, le]} != {h}")
            check(np.isnan(r[:, :, cols.index("top1_prob")]).all(),
                  f"{name}: top1_prob derived from normalized weights")
            cs = f["accumulated/coselect"][()]
            check(cs[0, 1, 0] == 3 and cs[0, 0, 1] == 3 and cs[1, 2, 3] == 3,
                  f"{name}: coselect[0,1,0]={cs[0, 1, 0]} (want 3), [1,2,3]={cs[1, 2, 3]} (want 3)")
        if name == "small_cols.csv":
            with h5py.File(out, "r") as f:
                g = [g for _, g in f["import/labels"].items() if g.attrs["key"] == "note"][0]
                vals = sorted(v.decode() for v in g["values"][()])
                check(vals == sorted(["plain", "with, comma", 'say "hi"', "two\r\nlines"]),  # quoted CRLF kept
                      f"{name}: quoted CSV values {vals}")
        compare_analyze(ctx, out, HAND_ROUTED)
    # --assume-dropless: processed == routed, dropped 0, capacity -1, analyze drop rate 0
    out = os.path.join(w, "dropless.h5")
    if import_ok(ctx, os.path.join(fx, "small.jsonl"), out, "--experts", "4",
                 "--assume-dropless").returncode == 0:
        j = analyze(ctx, out)
        check(j.get("processed") == int(HAND_ROUTED.sum()) and j.get("dropped") == 0,
              f"dropless: analyze processed {j.get('processed')} dropped {j.get('dropped')}")
        with h5py.File(out, "r") as f:
            check((f["steps/capacity"][()] == -1).all() and (f["routes/kept"][()] == 1).all(),
                  "dropless: capacity/kept")


def case_softmax(ctx):
    fx, w = ctx["fx"], ctx["work"]
    src, out = os.path.join(fx, "softmax.jsonl"), os.path.join(w, "softmax.h5")
    if import_ok(ctx, src, out, "--experts", "4", "--probs", "softmax").returncode != 0:
        return
    # hand: top-1 per token 0.5, 0.4, 0.6, 0.25 -> mean 0.4375; margins 0.3, 0.1, 0.5, 0 -> 0.225
    with h5py.File(out, "r") as f:
        cols = [c.decode() if isinstance(c, bytes) else c for c in f["steps/router"].attrs["columns"]]
        r = f["steps/router"][0, 0]
        check(abs(r[cols.index("top1_prob")] - 0.4375) < 1e-12, f"softmax: top1_prob {r[cols.index('top1_prob')]}")
        check(abs(r[cols.index("top1_top2_margin")] - 0.225) < 1e-12,
              f"softmax: margin {r[cols.index('top1_top2_margin')]}")
        for c in ("gate_entropy", "logit_mean", "aux_loss", "z_loss"):
            check(np.isnan(r[cols.index(c)]), f"softmax: {c} = {r[cols.index(c)]}, want NaN (not derivable)")
        # token 1: experts [1, 3] probs [0.3, 0.4] -> best first [3, 1], weights 4/7, 3/7
        check(f["routes/expert"][1, 0].tolist() == [3, 1], f"softmax: best first {f['routes/expert'][1, 0]}")
        check(abs(float(f["routes/weight"][1, 0, 0]) - 4 / 7) < 1e-6, "softmax: normalised weight")
    j = analyze(ctx, out)
    check(abs((j.get("top1_prob_mean") or 0) - 0.4375) < 1e-12, f"softmax: analyze top1 {j.get('top1_prob_mean')}")
    p = run([ctx["imp"], src, "-o", os.path.join(w, "sm_norm.h5"), "--experts", "4",
             "--probs", "normalized"], expect=1)
    check("softmax.jsonl:1:" in p.stderr and "gating_probs" in p.stderr,
          f"softmax with --probs normalized: message {p.stderr!r}")
    # --probs auto (the default): sums below 1 -> softmax, same numbers
    auto = os.path.join(w, "sm_auto.h5")
    p = run([ctx["imp"], src, "-o", auto, "--experts", "4"], expect=0)
    check("softmax probabilities" in p.stderr, f"auto: not reported as softmax: {p.stderr!r}")
    with h5py.File(auto, "r") as f:
        check(f.attrs["import_probs"] == "softmax", f"auto: import_probs {f.attrs['import_probs']}")
        cols = [c.decode() if isinstance(c, bytes) else c for c in f["steps/router"].attrs["columns"]]
        check(abs(f["steps/router"][0, 0][cols.index("top1_prob")] - 0.4375) < 1e-12, "auto: top1_prob")


def case_counts(ctx):
    fx, w = ctx["fx"], ctx["work"]
    src, out = os.path.join(fx, "counts.csv"), os.path.join(w, "counts.h5")
    if import_ok(ctx, src, out, "--experts", "4").returncode != 0:
        return
    hand = np.array([[[12, 5, 9, 1], [0, 0, 10, 4]]])
    _, routed, labels = expected(parse_rows(src, "counts"), 4)
    check(np.array_equal(routed, hand), "counts: independent recount != hand")
    with h5py.File(out, "r") as f:
        check(np.array_equal(f["steps/routed"][()], hand), f"counts: steps/routed {f['steps/routed'][()]}")
        check("routes/expert" not in f and "accumulated/coselect" not in f, "counts: route-level data written")
        check(f.attrs["source"] == "import:counts", "counts: source")
        g = [g for _, g in f["import/labels"].items() if g.attrs["key"] == "domain"][0]
        vals = [v.decode() for v in g["values"][()]]
        check(g["routed"][vals.index("math")].tolist() == [[2, 0, 9, 0], [0, 0, 3, 4]],
              f"counts: math table {g['routed'][vals.index('math')].tolist()}")
    j = compare_analyze(ctx, out, hand)
    an = j.get("analyses", {})
    check(an.get("routing_map", {}).get("status") == "missing"
          and "routes/" in an.get("routing_map", {}).get("missing", "")
          and an.get("hotspots", {}).get("coselect_missing") == "accumulated/coselect absent",
          f"counts: analyze routing_map {an.get('routing_map')} hotspots {an.get('hotspots', {}).get('coselect_missing')}")


BAD = [  # file, line, text in the message, rows kept with --skip-bad
    ("bad_json.jsonl", 3, "malformed JSON", 3),
    ("bad_expert.jsonl", 2, "field 'experts': expert 9 out of range [0, 4)", 2),
    ("missing_field.jsonl", 4, "field 'experts' missing", 3),
    ("bad_cols.csv", 3, "5 fields, the header has 4", 2),
    ("bad_probs.jsonl", 2, "field 'gating_probs': element 1 is negative", 2),
]


def case_bad_rows(ctx):
    fx, w = ctx["fx"], ctx["work"]
    for name, line, text, kept in BAD:
        src, out = os.path.join(fx, name), os.path.join(w, name + ".h5")
        # --probs normalized: bad_probs.jsonl's line 3 (sum 0.7) is bad only for normalised
        # weights (--probs auto would take the file as softmax probabilities)
        p = run([ctx["imp"], src, "-o", out, "--experts", "4", "--probs", "normalized"], expect=1)
        check(f"{name}:{line}: " in p.stderr and text in p.stderr,
              f"{name}: message {p.stderr.strip()!r} lacks '{name}:{line}: ... {text}'")
        check(not os.path.exists(out), f"{name}: output written after an error")
        # these fixtures are 1/4 to 1/2 bad: above the default --max-skip 0.01, refused
        p = run([ctx["imp"], src, "-o", out, "--experts", "4", "--probs", "normalized",
                 "--skip-bad"], expect=1)
        check("rows are bad" in p.stderr and "--max-skip" in p.stderr and not os.path.exists(out),
              f"{name}: --skip-bad over the share limit: {p.stderr.strip()!r}")
        p = run([ctx["imp"], src, "-o", out, "--experts", "4", "--probs", "normalized",
                 "--skip-bad", "--max-skip", "1"], expect=0)
        check(re.search(r"skipped \d+ of \d+ rows \(\d+\.\d+%", p.stderr),
              f"{name}: --skip-bad does not report the skipped share: {p.stderr!r}")
        if p.returncode != 0:
            continue
        with h5py.File(out, "r") as f:
            check(int(f.attrs["import_rows"]) == kept, f"{name}: {f.attrs['import_rows']} rows kept, want {kept}")
            skipped = int(f.attrs["import_skipped"])
        # the good rows, parsed independently: the bad lines are dropped by number
        good = []
        fmt = "csv" if name.endswith(".csv") else "jsonl"
        if fmt == "jsonl":
            seen = set()
            with open(src) as fh:
                for n, l in enumerate(fh, 1):
                    try:
                        d = json.loads(l)
                    except ValueError:
                        continue
                    key = (d.get("step", 0), d.get("token_idx"), d.get("layer"))
                    if ("experts" not in d or max(d["experts"]) >= 4 or len(d["experts"]) != 2
                            or min(d["gating_probs"]) < 0 or abs(sum(d["gating_probs"]) - 1) > 1e-3
                            or key in seen):
                        continue
                    seen.add(key)
                    good.append((n, d))
        else:
            good = [(1, {"layer": 0, "experts": [1, 0]}), (3, {"layer": 0, "experts": [1, 2]})]
        check(len(good) == kept, f"{name}: independent parser keeps {len(good)} rows, want {kept}")
        _, routed, _ = expected(good, 4)
        with h5py.File(out, "r") as f:
            got = f["steps/routed"][()]
            check(got.shape == routed.shape and np.array_equal(got, routed),
                  f"{name} --skip-bad: routed {got.tolist()} != {routed.tolist()} ({skipped} skipped)")
    p = run([ctx["imp"], os.path.join(fx, "empty.jsonl"), "-o", os.path.join(w, "e.h5"),
             "--experts", "4"], expect=1)
    check("empty input" in p.stderr, f"empty: {p.stderr!r}")
    dup = os.path.join(w, "dup.jsonl")
    with open(dup, "w") as fh:
        fh.write('{"layer": 0, "experts": [1], "token_idx": 7}\n\n{"layer": 0, "experts": [2], "token_idx": 7}\n')
    p = run([ctx["imp"], dup, "-o", os.path.join(w, "d.h5"), "--experts", "4"], expect=1)
    check("dup.jsonl:3: duplicate row" in p.stderr and "line 1" in p.stderr, f"duplicate: {p.stderr!r}")
    lay = os.path.join(w, "layer.jsonl")
    with open(lay, "w") as fh:
        fh.write('{"layer": 0, "experts": [1]}\n{"layer": 5, "experts": [2]}\n')
    p = run([ctx["imp"], lay, "-o", os.path.join(w, "l.h5"), "--experts", "4", "--layers", "2"], expect=1)
    check("layer.jsonl:2: field 'layer': 5 out of range [0, 2)" in p.stderr, f"layer: {p.stderr!r}")
    nan = os.path.join(w, "nan.csv")
    with open(nan, "w") as fh:
        fh.write("layer,experts,gating_probs\n0,1;2,nan;0.5\n")
    p = run([ctx["imp"], nan, "-o", os.path.join(w, "n.h5"), "--experts", "4"], expect=1)
    check("nan.csv:2: field 'gating_probs': element 0 is not a finite number" in p.stderr, f"nan: {p.stderr!r}")


def case_no_partial_output(ctx):
    fx, w = ctx["fx"], ctx["work"]
    out = os.path.join(w, "out.h5")
    run([ctx["imp"], os.path.join(fx, "bad_expert.jsonl"), "-o", out, "--experts", "4"], expect=1)
    check(not os.path.exists(out), "failed import left the output")
    check(glob.glob(out + ".tmp.*") == [], f"failed import left {glob.glob(out + '.tmp.*')}")
    with open(out, "wb") as fh:
        fh.write(b"previous contents")
    run([ctx["imp"], os.path.join(fx, "bad_json.jsonl"), "-o", out, "--experts", "4"], expect=1)
    with open(out, "rb") as fh:
        check(fh.read() == b"previous contents", "failed import changed an existing output")
    check(glob.glob(out + ".tmp.*") == [], "failed import left a temporary file")
    p = run([ctx["imp"], os.path.join(fx, "small.jsonl"), "-o", os.path.join(w, "nodir", "x.h5"),
             "--experts", "4"], expect=2)
    check("nodir" in p.stderr and "No such file" in p.stderr, f"missing directory: {p.stderr!r}")
    p = run([ctx["imp"], os.path.join(fx, "small.jsonl"), "-o", os.path.join(fx, "small.jsonl"),
             "--experts", "4"], expect=2)
    check("is the input" in p.stderr, f"output = input: {p.stderr!r}")


def case_usage(ctx):
    fx, w = ctx["fx"], ctx["work"]
    src, out = os.path.join(fx, "small.jsonl"), os.path.join(w, "u.h5")
    for args, text in ((["-o", out], "--experts is required"),
                       (["-o", out, "--experts", "0"], "--experts: '0' is not an integer in [1,"),
                       (["-o", out, "--experts", "4", "--top-k", "5"], "--top-k 5 is larger"),
                       (["-o", out, "--experts", "4", "--format", "xml"], "--format: 'xml'"),
                       (["--experts", "4"], "no output"),
                       (["-o", out, "--experts", "4", "--bogus"], "unknown option '--bogus'")):
        p = run([ctx["imp"], src, *args], expect=2)
        check(text in p.stderr, f"usage {args}: {p.stderr!r} lacks {text!r}")
    p = run([ctx["imp"], "--help"], expect=0)
    check("--skip-bad" in p.stdout, "--help")
    p = run([ctx["imp"], os.path.join(fx, "small.jsonl"), "-o", out, "--experts", "4", "--top-k", "3"], expect=1)
    check("small.jsonl:1: field 'experts': 2 experts, expected 3 (--top-k)" in p.stderr, f"top-k: {p.stderr!r}")


def case_generated(ctx):
    w = ctx["work"]
    rng = random.Random(12345)
    E, L, k = 8, 3, 2
    src = os.path.join(w, "gen.jsonl")
    with open(src, "w") as fh:
        for step in (0, 10, 20):
            for t in range(40):
                for l in range(L):
                    w8 = [rng.random() ** 3 for _ in range(E)]
                    ex = sorted(range(E), key=lambda e: -w8[e])[:k]
                    s = sum(w8[e] for e in ex)
                    fh.write(json.dumps({"step": step, "token_idx": step * 100 + t, "layer": l,
                                         "experts": ex, "gating_probs": [w8[e] / s for e in ex],
                                         "dataset": ["a", "b", "c"][t % 3], "req": f"q{t}"}) + "\n")
    out = os.path.join(w, "gen.h5")
    if import_ok(ctx, src, out, "--experts", str(E), "--route-samples", "16").returncode != 0:
        return
    steps, routed, labels = expected(parse_rows(src, "jsonl"), E)
    with h5py.File(out, "r") as f:
        check(np.array_equal(f["steps/routed"][()], routed), "generated: steps/routed differs")
        check(list(f["import/step_value"][()]) == [0, 10, 20], "generated: step values")
        check(f["routes/step"].shape[0] == 48 and np.bincount(f["routes/step"][()]).tolist() == [16, 16, 16],
              f"generated: routes per step {np.bincount(f['routes/step'][()]).tolist()}")
        check(labels_in(f).get("dataset") == labels["dataset"], "generated: label counts")
    compare_analyze(ctx, out, routed)


def write_seq_log(path, seq_key, E, L, k, nseq, rng, renorm=True):
    """A per-token log as real traces come: token_idx restarts in every sequence; sequences of
    unequal length; renormalised top-k weights (sum 1) or raw softmax probabilities."""
    rows = []
    with open(path, "w") as fh:
        for q in range(nseq):
            for t in range(3 + 5 * q):  # unequal sequence lengths: 3, 8, 13, ...
                for l in range(L):
                    w8 = [rng.random() ** 3 for _ in range(E)]
                    tot = sum(w8)
                    ex = sorted(range(E), key=lambda e: -w8[e])[:k]
                    s = sum(w8[e] for e in ex) if renorm else tot
                    d = {seq_key: f"p{q:03d}", "token_idx": t, "layer": l, "experts": ex,
                         "gating_probs": [w8[e] / s for e in ex]}
                    rows.append(d)
                    fh.write(json.dumps(d) + "\n")
    return rows


def case_sequences(ctx):
    """token_idx restarting per prompt: auto-detected sequence field, one step per sequence;
    the duplicate error says what to do; --probs auto finds renormalised weights."""
    w = ctx["work"]
    rng = random.Random(7)
    E, L, k, nseq = 6, 2, 2, 4
    src = os.path.join(w, "seq.jsonl")
    rows = write_seq_log(src, "problem_id", E, L, k, nseq, rng)
    out = os.path.join(w, "seq.h5")
    p = import_ok(ctx, src, out, "--experts", str(E))
    if p.returncode != 0:
        return
    check("sequence field 'problem_id' (detected" in p.stderr, f"seq: detection not reported: {p.stderr!r}")
    check("renormalised top-k" in p.stderr, f"seq: renormalised probs not reported: {p.stderr!r}")
    routed = np.zeros((nseq, L, E), dtype=np.int64)
    top1 = []
    for d in rows:
        q = int(d["problem_id"][1:])
        for e in d["experts"]:
            routed[q, d["layer"], e] += 1
        top1.append(max(d["gating_probs"]) / sum(d["gating_probs"]))
    with h5py.File(out, "r") as f:
        check(np.array_equal(f["steps/routed"][()], routed), "seq: steps/routed != independent recount")
        check(f.attrs["import_sequence_field"] == "problem_id" and int(f.attrs["import_sequences"]) == nseq,
              "seq: sequence attributes")
        check(f.attrs["import_probs"] == "normalized", f"seq: import_probs {f.attrs['import_probs']}")
        check(abs(float(f.attrs["import_top1_weight_mean"]) - float(np.mean(top1))) < 1e-9,
              f"seq: top-1 weight {f.attrs['import_top1_weight_mean']} != {np.mean(top1)}")
        check(f["routes/expert"].shape[0] == sum(3 + 5 * q for q in range(nseq)),
              f"seq: routes {f['routes/expert'].shape[0]} (every token of every sequence)")
        check(f.attrs["import_token_ids"] == "position", "seq: token ids are positions")
    j = analyze(ctx, out)
    g = j.get("analyses", {}).get("gating", {})
    check(g.get("probs") == "renormalised top-k" and abs((g.get("top1_weight_mean") or 0) - np.mean(top1)) < 1e-9,
          f"seq: analyze gating {g}")
    sp = j.get("analyses", {}).get("specialisation", {})
    check(sp.get("id_kind") == "position", f"seq: specialisation id kind {sp.get('id_kind')}")
    # another name, given explicitly; without it the duplicate row error names the remedy
    src2 = os.path.join(w, "seq2.jsonl")
    write_seq_log(src2, "conv", E, L, k, 3, random.Random(8))
    p = run([ctx["imp"], src2, "-o", os.path.join(w, "x.h5"), "--experts", str(E)], expect=1)
    check("duplicate row for step 0, token_idx 0, layer 0" in p.stderr and "--sequence-field NAME" in p.stderr
          and "conv" in p.stderr, f"seq: duplicate message {p.stderr!r}")
    p = run([ctx["imp"], src2, "-o", os.path.join(w, "x.h5"), "--experts", str(E), "--skip-bad"], expect=1)
    check("rows are bad" in p.stderr, f"seq: --skip-bad keeps the first sequence silently: {p.stderr!r}")
    import_ok(ctx, src2, os.path.join(w, "x.h5"), "--experts", str(E), "--sequence-field", "conv")
    p = run([ctx["imp"], src, "-o", os.path.join(w, "y.h5"), "--experts", str(E), "--sequence-field", "none"], expect=1)
    check("duplicate row" in p.stderr, f"seq: --sequence-field none: {p.stderr!r}")
    p = run([ctx["imp"], src, "-o", os.path.join(w, "y.h5"), "--experts", str(E), "--tokens-per-step", "4"], expect=1)
    check("--tokens-per-step cannot split" in p.stderr, f"seq: tokens-per-step: {p.stderr!r}")


def case_sparse_layers(ctx):
    """A counts table of layers 0, 9 and 20: three layers labelled with their ids, no empty
    layer in between, no dead experts, no nan in any report."""
    w = ctx["work"]
    src = os.path.join(w, "sparse.csv")
    E = 4
    table = {0: [10, 20, 30, 40], 9: [5, 0, 5, 10], 20: [1, 1, 1, 97]}
    with open(src, "w") as fh:
        fh.write("layer,expert,count\n")
        for l, v in table.items():
            for e, c in enumerate(v):
                fh.write(f"{l},{e},{c}\n")
    out = os.path.join(w, "sparse.h5")
    if import_ok(ctx, src, out, "--experts", str(E), "--top-k", "2").returncode != 0:
        return
    with h5py.File(out, "r") as f:
        check(f["steps/routed"].shape == (1, 3, E), f"sparse: shape {f['steps/routed'].shape}")
        check(f["import/layer_id"][()].tolist() == [0, 9, 20], f"sparse: layer ids {f['import/layer_id'][()]}")
        check(f["steps/routed"][0].tolist() == list(table.values()), "sparse: counts")
    j = analyze(ctx, out)
    lay = j.get("analyses", {}).get("utilisation", {}).get("layers", [])
    check([x.get("layer") for x in lay] == [0, 9, 20], f"sparse: analyse layers {[x.get('layer') for x in lay]}")
    dead = j.get("analyses", {}).get("entropy", {}).get("dead_experts", [])
    # layer 9 expert 1 really has no tokens over the whole (one-step) log: the only dead one
    check([(d["layer"], d["expert"]) for d in dead] == [(9, 1)], f"sparse: dead experts {dead}")
    cap = j.get("analyses", {}).get("capacity", {})
    check(cap.get("status") == "ok" and len(cap.get("what_if", [])) > 0,
          f"sparse: capacity what-if needs only loads: {cap}")
    # capacity from the loads alone: cf 4 is the smallest what-if factor with <= 0.1 % drops
    # (layer 20's 97 pairs need ceil(cf * 100 / 4) >= 97); cf 3 drops 97 - 75 = 22 of 440
    check(cap.get("capacity_factor_for_target") == 4 and
          {x["capacity_factor"]: x["dropped"] for x in cap.get("what_if", [])}.get(3) == 22,
          f"sparse: capacity what-if {cap.get('what_if')}")
    check(any(f["id"] == "capacity_needed" and f["value"] == 4 for f in j.get("findings", [])),
          "sparse: no capacity_needed finding")
    # placement what-if on an assumed placement (no placement in a log): min(E, 8) = 4 ranks,
    # one expert each; expert 3 carries 40 + 10 + 97 = 147 of 220 pairs; a copy on the least
    # loaded rank (0: 16 pairs) takes half: max rank load 147 -> 16 + 73.5 = 89.5
    h = j.get("analyses", {}).get("hotspots", {})
    rec = {r["id"]: r for r in j.get("recommendations", [])}
    check(h.get("assumed_ranks") == 4 and h.get("replicate_expert") == 3 and
          "replicate_hot_expert" in rec and rec["replicate_hot_expert"]["impact"]["current"] == 147
          and rec["replicate_hot_expert"]["impact"]["projected"] == 89.5
          and "assumed" in rec["replicate_hot_expert"]["evidence"],
          f"sparse: replication what-if {h} {rec.get('replicate_hot_expert')}")
    for fmt in ("--markdown", "--html"):
        p = run([ctx["ana"], out, fmt, "-"], expect=0)
        check(re.search(r"\bnan\b|cf 0\.00", p.stdout, re.I) is None, f"sparse {fmt}: nan or cf 0.00 in report")
    t = run([ctx["ana"], out], expect=0).stdout
    check("cf 0.00" not in t and "layer 20" in t, f"sparse terminal: {t}")
    # with --layers 21 the empty layers stay, but are never dead experts
    out2 = os.path.join(w, "sparse21.h5")
    if import_ok(ctx, src, out2, "--experts", str(E), "--layers", "21").returncode == 0:
        j = analyze(ctx, out2)
        dead = j.get("analyses", {}).get("entropy", {}).get("dead_experts", [])
        check([(d["layer"], d["expert"]) for d in dead] == [(9, 1)], f"sparse --layers 21: dead {dead}")


def case_numbers(ctx):
    """One definition per number: token-weighted means on steps of unequal sizes; pooled load
    entropy; a balanced top-2-of-3 log raises no collapse."""
    w = ctx["work"]
    rng = random.Random(11)
    E, k, L = 4, 2, 2
    src = os.path.join(w, "uneq.jsonl")
    top1, loads = [], np.zeros((L, E), dtype=np.int64)
    with open(src, "w") as fh:
        for step, ntok in enumerate([1, 40, 2, 25, 3]):  # unequal step sizes
            for t in range(ntok):
                for l in range(L):
                    # small steps are confident, large ones are not: the unweighted mean of
                    # per-step means differs from the token-weighted mean
                    p = [rng.random() for _ in range(E)]
                    if ntok < 5:
                        p[0] += 20
                    tot = sum(p)
                    ex = sorted(range(E), key=lambda e: -p[e])[:k]
                    fh.write(json.dumps({"step": step, "token_idx": t, "layer": l, "experts": ex,
                                         "gating_probs": [p[e] / tot for e in ex]}) + "\n")
                    top1.append(p[ex[0]] / tot)
                    for e in ex:
                        loads[l, e] += 1
    out = os.path.join(w, "uneq.h5")
    if import_ok(ctx, src, out, "--experts", str(E)).returncode != 0:
        return
    j = analyze(ctx, out)
    want = float(np.mean(top1))
    check(abs((j.get("top1_prob_mean") or 0) - want) < 1e-9,
          f"numbers: top1_prob_mean {j.get('top1_prob_mean')} != token-weighted {want}")
    g = j.get("analyses", {}).get("gating", {})
    check(abs((g.get("top1_prob_mean") or 0) - want) < 1e-9, f"numbers: gating top1 {g.get('top1_prob_mean')}")
    sat = [f for f in j.get("findings", []) if f["id"] == "saturation"]
    check(sat and f"{want:.3f}" in sat[0]["title"] and "last 10%" in sat[0]["title"],
          f"numbers: the finding states the headline mean and labels the window: {sat}")
    # pooled load entropy: each layer's loads over all steps, pair-weighted over layers
    ent = [(-sum(x / v.sum() * np.log(x / v.sum()) for x in v if x > 0)) / np.log(E) for v in loads]
    pooled = float(np.average(ent, weights=loads.sum(axis=1)))
    check(abs((j.get("load_entropy_norm_mean") or 0) - pooled) < 1e-9,
          f"numbers: load entropy {j.get('load_entropy_norm_mean')} != pooled {pooled}")
    check(j.get("load_entropy_norm_per_step_mean") is not None, "numbers: per-step entropy labelled")
    md = run([ctx["ana"], out, "--markdown", "-"], expect=0).stdout
    check(f"{want:.4f}" in md, f"numbers: Markdown lacks the headline top-1 {want:.4f}")
    # top-2 of 3 experts, balanced: every expert is chosen by 2/3 of the tokens by construction
    src = os.path.join(w, "bal3.jsonl")
    with open(src, "w") as fh:
        for step in range(12):
            for t in range(30):
                fh.write(json.dumps({"step": step, "token_idx": t, "layer": 0,
                                     "experts": [[0, 1], [0, 2], [1, 2]][t % 3]}) + "\n")
    out = os.path.join(w, "bal3.h5")
    if import_ok(ctx, src, out, "--experts", "3").returncode == 0:
        j = analyze(ctx, out)
        e = j.get("analyses", {}).get("entropy", {})
        check(e.get("collapse") == [] and e.get("always_on") == [],
              f"numbers: balanced top-2 of 3 raises collapse {e.get('collapse')} / always-on {e.get('always_on')}")
        cs = j.get("analyses", {}).get("hotspots", {}).get("coselect", [])
        lifts = [p["lift"] for c in cs for p in c["pairs"]]
        check(lifts and all(abs(x - 1) < 1e-9 for x in lifts), f"numbers: balanced lift is not 1: {lifts}")


def case_deep_html(ctx):
    """A 12-layer counts table whose worst layer is the last: the HTML load chart and the
    heatmap show it (per layer, never experts summed over layers); axis ticks are round."""
    w = ctx["work"]
    src = os.path.join(w, "deep.csv")
    E, L = 4, 12
    table = {l: [25, 25, 25, 25] for l in range(L)}
    table[11] = [91, 3, 3, 3]       # max/mean 3.64: the worst
    table[10] = [40, 20, 20, 20]    # 1.6
    with open(src, "w") as fh:
        fh.write("step,layer,expert,count\n")
        for s_ in (0, 1):
            for l, v in table.items():
                for e, c in enumerate(v):
                    fh.write(f"{s_},{l},{e},{c}\n")
    out = os.path.join(w, "deep.h5")
    if import_ok(ctx, src, out, "--experts", str(E), "--top-k", "1").returncode != 0:
        return
    j = analyze(ctx, out)
    hm = j.get("analyses", {}).get("utilisation", {}).get("heatmap", {})
    lay = hm.get("layers", [])
    check(lay and lay[0]["layer"] == 11 and lay[1]["layer"] == 10 and
          [row[0] for row in lay[0]["values"]] == table[11] and hm.get("max") == 91,
          f"deep: heatmap per layer, worst first: {[(x['layer'], x['values']) for x in lay][:2]}")
    html = run([ctx["ana"], out, "--html", "-"], expect=0).stdout
    m = re.search(r'<svg[^>]*id="load-hist[^"]*".*?</svg>', html, re.S)
    check(m is not None and "layer 11:" in m.group(0) and "layer 10:" in m.group(0),
          "deep: the load chart lacks the worst layers 11 and 10")
    # layer 11's share axis: max share 0.91 -> round max 100% -> ticks 0, 25, 50, 75, 100 %
    ticks = re.findall(r'text-anchor="end"[^>]*>(\d+\.\d)%<', m.group(0)) if m else []
    check({"0.0", "25.0", "50.0", "75.0", "100.0"} <= set(ticks), f"deep: round ticks {sorted(set(ticks))}")
    h = re.search(r'<svg[^>]*id="expert-step-heatmap[^"]*".*?</figure>', html, re.S)
    check(h is not None and "layer 11" in h.group(0) and "one colour scale" in h.group(0),
          "deep: heatmap panels per layer")


CASES = {"sequences": case_sequences, "numbers": case_numbers, "deep_html": case_deep_html, "sparse_layers": case_sparse_layers,
         "formats": case_formats, "softmax": case_softmax, "counts": case_counts,
         "bad_rows": case_bad_rows, "no_partial_output": case_no_partial_output,
         "usage": case_usage, "generated": case_generated}


def main(argv):
    if len(argv) != 7 or argv[1] not in CASES:
        print(__doc__, file=sys.stderr)
        return 2
    ctx = {"imp": argv[2], "ana": argv[3], "fx": argv[4], "checker": argv[5], "work": argv[6]}
    shutil.rmtree(ctx["work"], ignore_errors=True)
    os.makedirs(ctx["work"])
    CASES[argv[1]](ctx)
    if failures:
        print(f"check_import {argv[1]}: FAILED ({len(failures)} problems)")
        return 1
    print(f"check_import {argv[1]}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
