#!/usr/bin/python3
"""check_analyze_report.py - moerun-analyze end to end on the fixture of fixture.py.

Usage: check_analyze_report.py MOERUN_ANALYZE WORKDIR

Every expected number below is worked out by hand from the fixture's counts (fixture.py);
the arithmetic is in the comments. Also: Markdown/HTML/JSON agree, several runs give a
comparison table, text from the file is escaped in HTML, empty runs give "missing"
sections, minimal files (only routed counts) give "missing" sections, and bad files
(truncated, newer schema, inconsistent columns, not HDF5) exit 1 with one clear message
and leave no report behind; 80 deterministically damaged copies never crash it.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np

import fixture

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def near(a, b, tol=1e-9):
    return a is not None and b is not None and abs(a - b) <= tol * max(1.0, abs(b))


def run(exe, *args):
    p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def full(exe, work):
    path = os.path.join(work, "full.h5")
    fixture.write(path, "full")
    vocab = os.path.join(work, "vocab.txt")
    with open(vocab, "w") as fh:
        fh.write("the\n<b>&amp\ndef\n|pipe|\nimport\nx\n")
    js, md, html = (os.path.join(work, "full." + e) for e in ("json", "md", "html"))
    rc, out, err = run(exe, path, "--peak-gflops", "0.001", "--dead-window", "3", "--vocab", vocab,
                       "--json", js, "--markdown", md, "--html", html)
    check(rc == 0, f"full: exit {rc}: {err}")
    check("findings" in out and "critical" in out, "terminal summary lacks findings/severity")
    j = json.load(open(js))
    check(j["analysis_schema"] == 1 and len(j["runs"]) == 1, "report envelope")
    r = j["runs"][0]
    a = r["analyses"]
    # totals: 4 steps x (16 + 16) pairs = 128 routed; layer 0 drops 4 per step = 16
    check(r["routed"] == 128 and r["dropped"] == 16 and r["processed"] == 112, "totals")
    u = a["utilisation"]
    l0, l1 = u["layers"]
    check(l0["tokens"] == [32, 16, 16, 0] and l1["tokens"] == [16, 16, 16, 16], "tokens per expert")
    check(near(u["fair_share"], 0.25), "fair share 1/4")
    check(near(l0["share"][0], 0.5) and near(l0["share"][3], 0.0), "layer 0 shares")
    check(near(l0["max_mean"], 2.0), f"layer 0 max/mean {l0['max_mean']} != 32/16 = 2")
    check(near(l0["cv"], 0.7071067811865476), f"layer 0 CV {l0['cv']} != sqrt(128)/16")
    check(near(l0["gini"], 0.375), f"layer 0 Gini {l0['gini']} != 96/(4*64)")
    check(l0["min"]["expert"] == 3 and l0["max"]["expert"] == 0, "layer 0 min/max experts")
    check([x["expert"] for x in l0["underloaded"]] == [3], "under-loaded: expert 3 (share 0 < 0.5 fair)")
    check([x["expert"] for x in l0["overloaded"]] == [0], "over-loaded: expert 0 (2x fair)")
    check(near(l1["max_mean"], 1.0) and near(l1["cv"], 0.0) and near(l1["gini"], 0.0), "layer 1 even")
    mm = u["across_layers"]["max_mean"]
    # max/mean per layer 2 and 1: p50 1.5, p90 1.9, p95 1.95 (linear interpolation)
    check(near(mm["p50"], 1.5) and near(mm["p90"], 1.9) and near(mm["p95"], 1.95)
          and mm["min"] == 1 and mm["max"] == 2, f"across-layer percentiles {mm}")
    e = a["entropy"]
    # layer 0: p = 1/2, 1/4, 1/4 -> 1.5 bits, /log2 4 = 0.75, 2^1.5 experts; layer 1: 2 bits
    check(near(e["layers"][0]["entropy_bits"], 1.5) and near(e["layers"][0]["entropy_norm"], 0.75)
          and near(e["layers"][0]["effective_experts"], 2 ** 1.5), f"layer 0 entropy {e['layers'][0]}")
    check(near(e["layers"][1]["entropy_bits"], 2.0) and near(e["layers"][1]["effective_experts"], 4.0),
          "layer 1 entropy")
    dead = e["dead_experts"]
    check(len(dead) == 1 and dead[0]["layer"] == 0 and dead[0]["expert"] == 3
          and dead[0]["since_step"] == 0 and dead[0]["dead_at_end"], f"dead experts {dead}")
    # collapse thresholds scale with the balanced values (docs/analysis.md): top-2 pair share
    # 0.8 + 0.2 * 2/4 = 0.9, top expert's token share 0.5 + 0.5 * 2/4 = 0.75. Layer 0: top-2
    # 12/16 = 0.75 < 0.9, but expert 0 is chosen by 2*8/16 = all tokens >= 0.75, and the other
    # experts (4, 4, 0 pairs) are not evenly used (normalised entropy log(2)/log(3) = 0.63 <
    # 0.9): a collapse from step 0, not an always-on expert. Layer 1 (even) does not.
    check(e["collapse_share"] == 0.9 and e["collapse_token_share"] == 0.75, "collapse thresholds")
    check([(c["layer"], c["began_step"], c["expert"]) for c in e["collapse"]] == [(0, 0, 0)]
          and near(e["collapse"][0]["rest_entropy_norm"], np.log(2) / np.log(3))
          and e["always_on"] == [], f"collapse {e['collapse']} always-on {e['always_on']}")
    check(all(near(x, 0.875) for x in e["series_entropy_norm"]), "entropy series (0.75+1)/2")
    g = a["gating"]
    # top1_prob 0.5 + 0.1 s over s = 0..3 -> mean 0.65; first 10% = step 0, last = step 3
    check(near(g["top1_prob_mean"], 0.65), f"top1 mean {g['top1_prob_mean']}")
    check(near(g["drift"]["top1_prob"]["first"], 0.5) and near(g["drift"]["top1_prob"]["last"], 0.8),
          "top1 drift")
    check(near(g["drift"]["logit_max"]["change"], 3.0), "logit max drift 2.5 -> 5.5")
    check(sum(g["histogram"]["top1_prob"]) == 8 and g["histogram"]["top1_prob"][10] == 2,
          "top-1 histogram: 8 samples, two in [0.5, 0.55)")
    b = a["balance_loss"]
    imb = [2.0 if l == 0 else 1.0 for s in range(4) for l in range(2)]
    aux = [fixture.router_row(s, l)[9] for s in range(4) for l in range(2)]
    check(near(b["corr_aux_vs_max_mean"], float(np.corrcoef(aux, imb)[0, 1]), 1e-9),
          f"aux/imbalance correlation {b['corr_aux_vs_max_mean']}")
    check(near(b["aux_loss_mean"], np.mean(aux)), "aux loss mean")
    c = a["capacity"]
    check(near(c["drop_rate"], 16 / 128), "drop rate 16/128")
    wi = {x["capacity_factor"]: x["dropped"] for x in c["what_if"]}
    # C = ceil(cf*16/4): cf .5 -> 2: L0 6+2+2, L1 2*4 = 18/step -> 72; cf .75 -> 3: 7 + 4 = 11 -> 44;
    # cf 1 -> 4: 4 -> 16; 1.25 -> 5: 3 -> 12; 1.5 -> 6: 2 -> 8; 2 -> 8: 0
    check(wi == {0.5: 72, 0.75: 44, 1: 16, 1.25: 12, 1.5: 8, 2: 0, 3: 0, 4: 0, 6: 0, 8: 0},
          f"what-if {wi}")
    check(c["replay_check"]["match"] and c["replay_check"]["replayed_dropped"] == 16, "replay check")
    check(len(c["experts_at_capacity"]) == 7, "7 experts reach capacity 4 (3 in layer 0, 4 in layer 1)")
    # fill: processed 112 / (capacity 4 * 4 experts * 8 step-layers = 128)
    check(near(c["capacity_fill"], 112 / 128), "capacity fill")
    co = a["communication"]
    # (counts .001 + dispatch .002 + combine .002) / total .010; expert .004 / .010
    check(near(co["exchange_share"], 0.5) and near(co["expert_share"], 0.4), "phase shares")
    by = co["bytes"]
    # 4 steps x 2 layers x 2 ranks = 16 rows: 1000, 300, 700 each
    check(by["bytes_sent"] == 16000 and by["bytes_intra"] == 4800 and by["bytes_inter"] == 11200,
          f"bytes by column name {by}")
    check(by["missing"] == ["msgs_intra", "msgs_inter"], f"missing traffic columns {by['missing']}")
    check(near(by["inter_share"], 0.7), "inter share")
    mx = co["matrix"]
    check(mx["inter_node_bytes"] == 300 and mx["intra_node_bytes"] == 0, "matrix intra/inter")
    check(mx["hotspots"][0]["src"] == 1 and mx["hotspots"][0]["dst"] == 0
          and near(mx["hotspots"][0]["ratio_to_mean"], 200 / 150), "matrix hotspot 1->0")
    cp = a["compute"]
    # 2 GEMMs x 2 x d_model 4 x d_ffn 8 = 128 FLOPs/pair; 112 pairs; expert time .004 x 16 rows
    check(cp["flops_per_pair"] == 128 and cp["expert_flops"] == 14336, "FLOPs")
    check(near(cp["achieved_gflops_per_rank"], 14336 / 0.064 / 1e9), "achieved GFLOP/s")
    check(near(cp["flops_utilisation"], 0.224) and cp["peak_source"] == "--peak-gflops", "utilisation")
    check(cp["memory_per_expert"]["weight_bytes"] == 2 * 4 * 8 * 4, "weights per expert")
    h = a["hotspots"]
    # rank 0 owns experts 0, 1: 32+16+16+16 = 80 of 128 -> 1.25x the mean 64
    check(near(h["ranks"][0]["load_over_mean"], 1.25), "rank 0 load")
    check(h["rebalance_max_rank_load_current"] == 80 and h["rebalance_max_rank_load_projected"] == 64,
          "placement what-if 80 -> 64")
    # co-selection lift against chance for k = 2 distinct experts (docs/analysis.md): the
    # conditional-Poisson null, P({a, b}) ~ w_a w_b with the marginals pi = n / N.
    # layer 0: diag 3,3,2,0, N = 4: expert 3 never, and top-2 of the other 3 has one design:
    # P01 = 1 - pi_2 = 0.5, so expected(0,1) = 2 = C01: lift 1 (chance, as it is)
    cs0 = h["coselect"][0]["pairs"][0]
    check(h["coselect"][0]["null"] == "conditional_poisson", "coselect null")
    check((cs0["a"], cs0["b"]) == (0, 1) and near(cs0["lift"], 1, 1e-8) and near(cs0["expected"], 2, 1e-8),
          f"coselect layer 0 {cs0}")
    # layer 1: diag 2,1,2,3 (pi = .5,.25,.5,.75), pairs 02, 13, 23, 03 once each. By symmetry
    # w = (1, y, 1, z); pi_0 = 1/2 gives yz = 1, pi_3 = 3 pi_1 gives z = 3y + 1, so
    # 3y^2 + y - 1 = 0, y = (sqrt(13) - 1)/6, e_2 = 4 + 8y; expected(0,2) = expected(1,3) =
    # 4/e_2 = 3/(2 + sqrt(13)) -> lift (2 + sqrt(13))/3 (tie: the lower pair (0,2) first)
    cs1 = h["coselect"][1]["pairs"][0]
    check((cs1["a"], cs1["b"]) == (0, 2) and near(cs1["lift"], (2 + 13 ** 0.5) / 3, 1e-8)
          and near(cs1["expected"], 3 / (2 + 13 ** 0.5), 1e-8), f"coselect layer 1 {cs1}")
    rm = a["routing_map"]
    check(rm["tokens"] == [0, 1, 4, 5] and rm["experts"] == [[0, 0], [0, 1], [0, 2], [1, 3]],
          "routing map")
    xo = rm["exchange_what_if"]
    # by hand over the 8 (token, layer) routes: flat inter-node copies 7, node-dedup 6,
    # node-limited(1) 2, re-routed gate mass 5 x 0.2
    check(near(xo["flat_inter_node_copies_per_token"], 7 / 8) and
          near(xo["hier_inter_node_copies_per_token"], 6 / 8) and
          near(xo["node_limited1_inter_node_copies_per_token"], 2 / 8) and
          near(xo["node_limited1_rerouted_gate_mass"], 1.0 / 8, 1e-6), f"exchange what-if {xo}")
    sp = a["specialisation"]["experts"]
    e0 = [x for x in sp if x["layer"] == 0 and x["expert"] == 0][0]
    check(sorted(t["id"] for t in e0["top_tokens"]) == [0, 1, 4] and e0["samples"] == 3,
          f"specialisation layer 0 expert 0 {e0}")
    check({t["id"]: t["text"] for t in e0["top_tokens"]} == {0: "the", 1: "<b>&amp", 4: "import"},
          "vocabulary decoding")
    rec = {x["id"]: x for x in r["recommendations"]}
    check(set(rec) == {"capacity_factor", "balance_routing", "placement", "top_k", "hier_exchange",
                       "node_limited", "replicate_hot_expert"}, f"recommendations {sorted(rec)}")
    # replicate the hottest expert (0: 48 of 128 pairs) on the other rank, half its load
    # each: rank 0 80 - 24 = 56, rank 1 48 + 24 = 72 -> max rank load 80 -> 72
    check(rec["replicate_hot_expert"]["impact"]["current"] == 80 and
          rec["replicate_hot_expert"]["impact"]["projected"] == 72 and
          h["replicate_expert"] == 0 and h["replicate_to_rank"] == 1,
          f"replication what-if {rec['replicate_hot_expert']}")
    check(rec["capacity_factor"]["impact"]["projected"] == 0 and "2.00" in rec["capacity_factor"]["title"],
          "capacity recommendation: cf 2 -> 0 drops")
    for x in r["recommendations"]:
        check(x["impact"]["current"] is not None and x["impact"]["projected"] is not None
              and x["complexity"] and x["evidence"], f"recommendation {x['id']} lacks a number")
    sev = {x["id"]: x["severity"] for x in r["findings"]}
    check(sev["imbalance"] == "warning" and sev["drops"] == "critical" and
          sev["exchange_share"] == "critical" and sev["dead_experts"] == "critical" and
          sev["entropy"] == "warning" and sev["rank_hotspot"] == "warning", f"severities {sev}")
    order = [x["severity"] for x in r["findings"]]
    check(order == sorted(order, key=["critical", "warning", "info"].index), "findings ordered")
    # Markdown: same numbers, escaped vocabulary
    m = open(md).read()
    for s in ("### Utilisation", "| 0 | 64 | 2.000 | 0.707 | 0.375 |", "### Capacity and dropping",
              "| 2.00 | 0 | 0.0000% |", "\\<b\\>\\&amp", "raise capacity factor to 2.00"):
        check(s in m, f"markdown lacks {s!r}")
    return path


def collapse(exe, work):
    path = os.path.join(work, "collapse.h5")
    fixture.write(path, "collapse")
    js = os.path.join(work, "collapse.json")
    rc, out, err = run(exe, path, "--json", js)
    check(rc == 0, f"collapse: exit {rc}: {err}")
    r = json.load(open(js))["runs"][0]
    col = r["analyses"]["entropy"]["collapse"]
    # layer 1 routes 8, 6, 1, 1 from step 6 on: top-2 share 14/16, top expert chosen by
    # 2*8/16 = all tokens, for 10 steps (6..15); layer 0 collapses from step 0 (see full())
    check(len(col) == 2 and col[1]["layer"] == 1 and col[1]["began_step"] == 6 and
          near(col[1]["top2_share"], 0.875) and near(col[1]["top1_token_share"], 1.0),
          f"collapse {col}")
    fc = [f for f in r["findings"] if f["id"] == "collapse"]
    check(len(fc) == 1 and fc[0]["severity"] == "critical" and "2 layer(s)" in fc[0]["title"],
          f"collapse finding {fc}")
    check("collapse" in out, "terminal summary names the collapse")
    # the layer 1 load in the collapsed steps drops 4 + 2 per step over capacity 4
    check(r["analyses"]["capacity"]["layers"][1]["dropped"] == 10 * 6, "collapse drops")


def legacy_json(exe, path):
    # plain --json - keeps the first format's keys inside runs[0]
    rc, out, err = run(exe, path, "--json", "-")
    check(rc == 0, f"--json -: exit {rc} {err}")
    j = json.loads(out)
    r = j["runs"][0]
    for k in ("routed", "processed", "dropped", "drop_rate", "layers_load", "phase_seconds",
              "traffic_matrix_bytes", "events", "hosts", "config"):
        check(k in r, f"--json lacks legacy key {k}")
    check(r["hosts"] == ["node-a", "node-b"], "hosts")
    check(r["events"][0]["kind"] == "dead_expert", "events")


def multi(exe, work, path):
    odd = os.path.join(work, "a&b<c>.h5")
    shutil.copy(path, odd)
    html = os.path.join(work, "multi.html")
    js = os.path.join(work, "multi.json")
    md = os.path.join(work, "multi.md")
    rc, out, err = run(exe, path, odd, "--html", html, "--json", js, "--markdown", md)
    check(rc == 0, f"two runs: exit {rc} {err}")
    j = json.load(open(js))
    cmp = j["comparison"]
    check(len(j["runs"]) == 2 and len(cmp["rows"]) == 2, "comparison rows")
    col = cmp["columns"].index("worst_max_mean")
    check(cmp["rows"][0][col] == 2 and cmp["rows"][1][col] == 2, "comparison worst max/mean")
    h = open(html).read()
    check("a&amp;b&lt;c&gt;.h5" in h and "a&b<c>.h5" not in h, "file name escaped in HTML")
    check('id="comparison"' in h and "## Comparison" in open(md).read(), "comparison table rendered")
    check("http://" not in h.replace('xmlns="http://www.w3.org/2000/svg"', "")
          and "https://" not in h and "<script" not in h, "HTML has external references or scripts")
    check("# comparison" in out, "terminal comparison")


def empty_and_minimal(exe, work):
    e = os.path.join(work, "empty.h5")
    fixture.write(e, "empty")
    js, md, html = (os.path.join(work, "empty." + x) for x in ("json", "md", "html"))
    rc, out, err = run(exe, e, "--json", js, "--markdown", md, "--html", html)
    check(rc == 0, f"empty run: exit {rc}: {err}")
    r = json.load(open(js))["runs"][0]
    for sec in ("utilisation", "entropy", "gating", "capacity", "hotspots", "routing_map"):
        check(r["analyses"][sec]["status"] == "missing", f"empty run: {sec} not missing")
    check("no steps" in r["analyses"]["utilisation"]["missing"], "empty run: reason")
    check(r["findings"][0]["id"] == "empty", "empty run finding")
    check("missing: no steps in the file" in open(md).read(), "empty run markdown says missing")
    check(open(html).read().count("missing:") >= 5, "empty run HTML charts say missing")
    m = os.path.join(work, "minimal.h5")
    fixture.write(m, "minimal")
    rc, out, err = run(exe, m, "--json", js)
    check(rc == 0, f"minimal: exit {rc}: {err}")
    r = json.load(open(js))["runs"][0]
    check(r["analyses"]["utilisation"]["status"] == "ok" and
          r["analyses"]["utilisation"]["layers"][0]["tokens"] == [32, 16, 16, 0], "minimal: utilisation")
    # capacity what-if needs only loads: layer 0 (8, 4, 4, 0 pairs per step) over capacity
    # ceil(cf * 16 / 4): cf 1 -> 4 drops per step x 4 steps = 16; cf 2 (capacity 8) -> 0
    c = r["analyses"]["capacity"]
    wi = {x["capacity_factor"]: x["dropped"] for x in c.get("what_if", [])}
    check(c["status"] == "ok" and "steps/dropped absent" in c.get("recorded_missing", "")
          and wi.get(1.0) == 16 and wi.get(2.0) == 0 and c.get("capacity_factor_for_target") == 2
          and "drop_rate" not in c, f"minimal: capacity what-if from loads {c}")
    for sec, why in (("gating", "steps/router absent"),
                     ("compute", "d_model / d_ffn attributes absent"), ("routing_map", "routes/ absent"),
                     ("communication", "steps/phase_time, steps/traffic")):
        check(r["analyses"][sec]["status"] == "missing" and why in r["analyses"][sec]["missing"],
              f"minimal: {sec} {r['analyses'][sec]}")


def bad(exe, work, full_path):
    def expect(path, what, want):
        out_html = os.path.join(work, "bad.html")
        if os.path.exists(out_html):
            os.remove(out_html)
        rc, out, err = run(exe, full_path, path, "--html", out_html)
        check(rc == 1, f"{what}: exit {rc}, want 1")
        check(err.startswith("moerun-analyze: ") and want in err, f"{what}: message {err!r} lacks {want!r}")
        check("Traceback" not in err and "HDF5-DIAG" not in err and err.count("\n") == 1,
              f"{what}: noisy stderr {err!r}")
        check(not os.path.exists(out_html) and
              not [f for f in os.listdir(work) if f.startswith("bad.html")], f"{what}: report written")
        print(f"{what}: exit {rc}: {err.strip()}")

    newer = os.path.join(work, "newer.h5")
    fixture.write(newer, "newer")
    expect(newer, "newer schema", "schema_version 3 not supported")
    bc = os.path.join(work, "badcols.h5")
    fixture.write(bc, "badcols")
    expect(bc, "inconsistent columns", "steps/traffic has 4 columns but its columns attribute names 6")
    tr = os.path.join(work, "truncated.h5")
    data = open(full_path, "rb").read()
    open(tr, "wb").write(data[: len(data) // 2])
    expect(tr, "truncated", "truncated.h5")
    txt = os.path.join(work, "text.h5")
    open(txt, "w").write("not hdf5\n" * 50)
    expect(txt, "not HDF5", "not an HDF5 file")
    rc, _, err = run(exe, full_path, "--peak-gflops", "-3")
    check(rc == 2 and "--peak-gflops" in err and "> 0" in err, f"bad --peak-gflops: {rc} {err}")
    rc, _, err = run(exe, full_path, "--dead-window", "0")
    check(rc == 2 and "1..1000000000" in err, f"bad --dead-window: {rc} {err}")
    rc, _, err = run(exe, full_path, "--json")
    check(rc == 2 and "needs a value" in err, f"--json without value: {rc} {err}")


def corrupted(exe, work, full_path):
    """Deterministic damage: 20 truncations and 60 files with 1..64 random bytes overwritten.
    Each must end with exit 0 (valid JSON) or 1 (one line naming the file), never a signal."""
    import random
    rng = random.Random(20261123)
    data = open(full_path, "rb").read()
    path = os.path.join(work, "damaged.h5")
    js = os.path.join(work, "damaged.json")
    codes = {}
    for i in range(80):
        d = bytearray(data)
        if i < 20:
            d = d[: rng.randrange(64, len(d))]
        else:
            for _ in range(rng.choice([1, 4, 16, 64])):
                d[rng.randrange(len(d))] = rng.randrange(256)
        open(path, "wb").write(d)
        if os.path.exists(js):
            os.remove(js)
        rc, out, err = run(exe, path, "--json", js, "--html", os.path.join(work, "damaged.html"))
        codes[rc] = codes.get(rc, 0) + 1
        check(rc in (0, 1), f"damaged file {i}: exit {rc} (a signal is negative) {err[-300:]!r}")
        if rc == 1:
            check(err.startswith("moerun-analyze: " + path) and err.count("\n") == 1,
                  f"damaged file {i}: message {err!r}")
            check(not os.path.exists(js), f"damaged file {i}: report written despite exit 1")
        elif rc == 0:
            try:
                json.load(open(js))
            except ValueError as exc:
                check(False, f"damaged file {i}: exit 0 but JSON invalid: {exc}")
    print("damaged files: exit codes", codes)


def main():
    exe, work = sys.argv[1], os.path.join(sys.argv[2], "analyze_report")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    path = full(exe, work)
    legacy_json(exe, path)
    collapse(exe, work)
    multi(exe, work, path)
    empty_and_minimal(exe, work)
    bad(exe, work, path)
    corrupted(exe, work, path)
    if failures:
        print(f"check_analyze_report: {len(failures)} failures")
        return 1
    print("check_analyze_report: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
