#!/usr/bin/python3
"""check_log_rules.py - moerun-analyze's rules on imported routing logs (docs/analysis.md).

Usage: check_log_rules.py CASE IMPORT ANALYZE WORKDIR

Each case writes a JSON-lines routing log, imports it with moerun-import and analyses it;
every number is recomputed here independently (plain Python/numpy from the log itself) and
the Markdown report is checked to print the same numbers as the JSON.

Cases:
  node_limited  the node-limited what-if on an assumed shape (--ranks, --ranks-per-node):
                a 3-token log worked out by hand, and a random top-4 log against this
                script's own implementation of the node-limited router's rule (group score =
                sum of the two highest weights on the node, best M nodes, ties to the lower
                node id; token sources uniform over the ranks)
  remedies      balance_remedies fires on a collapsed log (capacity what-if drop rates, the
                cf for <= 0.1 % drops, max/mean rank load before / placed by load /
                replicating the hottest expert, max/mean without the dominant expert all
                recomputed here) and is absent on a balanced log
  lift          co-selection lift on logs drawn from a conditional-Poisson design with
                unequal loads (top-2 of 6, top-3 of 7): the reported pairs have lift 1 within
                sampling error, `expected` equals this script's brute-force design fit, and
                the first-order formula would have failed (the test can fail)
"""
import itertools
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys

import numpy as np

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)
    return cond


def near(a, b, tol=1e-6):
    return a is not None and b is not None and abs(a - b) <= tol * max(1.0, abs(b))


def run(args, expect=0):
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    check(p.returncode == expect, f"{' '.join(args)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p


def write_log(path, rows):
    with open(path, "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")


def analyse(ctx, name, rows, experts, *args):
    log = os.path.join(ctx["work"], name + ".jsonl")
    h5 = os.path.join(ctx["work"], name + ".h5")
    write_log(log, rows)
    run([ctx["imp"], log, "-o", h5, "--experts", str(experts)])
    j = json.loads(run([ctx["ana"], h5, "--json", "-", *args]).stdout)["runs"][0]
    md = run([ctx["ana"], h5, "--markdown", "-", *args]).stdout
    html = os.path.join(ctx["work"], name + ".html")
    run([ctx["ana"], h5, "--html", html, *args])
    with open(html) as fh:
        ctx["html"] = fh.read()
    return j, md


# ------------------------------------------------------------------ node-limited -------

def nl_reference(routes, E, P, R, Mmax):
    """routes: [(experts, weights)] per (token, layer). Contiguous experts over P ranks, nodes
    of R consecutive ranks, sources uniform over ranks. Returns hier copies and, per M,
    (copies, re-routed weight share), all means per route."""
    own = [e * P // E for e in range(E)]
    node = [r // R for r in range(P)]
    nodes = max(node) + 1
    share = [node.count(n) / P for n in range(nodes)]
    hier = 0.0
    per_m = {m: [0.0, 0.0] for m in range(1, Mmax + 1)}
    for ex, w in routes:
        nd = [node[own[e]] for e in ex]
        touched = sorted(set(nd))
        hier += sum(1 - share[n] for n in touched)
        score = {}
        for n in touched:
            ws = sorted((w[i] for i in range(len(ex)) if nd[i] == n), reverse=True)
            score[n] = sum(ws[:2])
        order = sorted(touched, key=lambda n: (-score[n], n))
        for m in range(1, Mmax + 1):
            allowed = order[:m]
            per_m[m][0] += sum(1 - share[n] for n in allowed)
            per_m[m][1] += sum(w[i] for i in range(len(ex)) if nd[i] not in allowed) / sum(w)
    n = len(routes)
    return hier / n, {m: (v[0] / n, v[1] / n) for m, v in per_m.items()}


def check_nl(j, md, routes, E, P, R, K, label, html):
    xo = j["analyses"]["routing_map"].get("exchange_what_if")
    if not check(xo is not None, f"{label}: no exchange_what_if: {j['analyses']['routing_map']}"):
        return
    nodes = (P + R - 1) // R
    Mmax = min(K, nodes) - 1
    hier, per_m = nl_reference(routes, E, P, R, Mmax)
    sh = xo["shape"]
    check(sh["assumed"] is True and sh["ranks"] == P and sh["ranks_per_node"] == R and sh["nodes"] == nodes
          and "assumed" in sh["token_source"], f"{label}: shape {sh}")
    check(near(xo["hier_inter_node_copies_per_token"], hier), f"{label}: hier {xo['hier_inter_node_copies_per_token']} != {hier}")
    check(len(xo["node_limited"]) == Mmax, f"{label}: {len(xo['node_limited'])} node-limited rows, want {Mmax}")
    for row in xo["node_limited"]:
        m = row["max_nodes"]
        c, lost = per_m[m]
        check(near(row["inter_node_copies_per_token"], c) and near(row["copies_saved_per_token"], hier - c)
              and near(row["rerouted_gate_mass"], lost), f"{label}: M {m}: {row} != copies {c}, lost {lost}")
        # the Markdown table prints the same numbers
        want = f"| {m} | {row['inter_node_copies_per_token']:.4f} | {row['copies_saved_per_token']:.4f} | "
        check(want in md, f"{label}: Markdown lacks {want!r}")
    f = [x for x in j["findings"] if x["id"] == "node_limited"]
    if check(len(f) == 1, f"{label}: node_limited finding {f}") and Mmax >= 1:
        c1 = per_m[1][0]
        check(near(f[0]["value"], hier - c1), f"{label}: finding value {f[0]['value']} != {hier - c1}")
        check(f"1 node(s) {c1:.4f} (saves {hier - c1:.4f}" in f[0]["title"], f"{label}: finding title {f[0]['title']}")
        check(f"1 node\\(s\\) {c1:.4f} \\(saves {hier - c1:.4f}" in md, f"{label}: Markdown finding differs")
        check(html_escape(f[0]["title"]) in html, f"{label}: HTML lacks the finding")


def html_escape(t):
    return (t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("'", "&#39;"))


def case_node_limited(ctx):
    # bad --ranks-per-node: exit 2 naming the flag and the range
    for bad in ("0", "x", "70000"):
        p = run([ctx["ana"], "nothing.h5", "--ranks-per-node", bad], expect=2)
        check("--ranks-per-node" in p.stderr and "1..65536" in p.stderr, f"--ranks-per-node {bad}: {p.stderr!r}")
    # By hand, 8 experts on 4 ranks of 2 nodes (experts 0-3 node 0, 4-7 node 1), sources
    # uniform: a touched node costs 1/2 copy.
    #  token 0: 0,1,2 (0.19 each) on node 0, 4 (0.43) on node 1: node scores 0.38 / 0.43 ->
    #           node 1 (the larger total weight 0.57 would have picked node 0); hier 1,
    #           limited 0.5, re-routed 0.57
    #  token 1: 0 (0.4) / 5,6,7 (0.3, 0.2, 0.1): 0.4 / 0.5 -> node 1; hier 1, limited 0.5, 0.4
    #  token 2: all on node 0: hier 0.5, limited 0.5, 0
    # means: hier 2.5/3, limited 0.5, saved 1/3, re-routed 0.97/3
    rows = [{"token_idx": 0, "layer": 0, "experts": [0, 1, 2, 4], "gating_probs": [0.19, 0.19, 0.19, 0.43]},
            {"token_idx": 1, "layer": 0, "experts": [0, 5, 6, 7], "gating_probs": [0.4, 0.3, 0.2, 0.1]},
            {"token_idx": 2, "layer": 0, "experts": [1, 2, 3, 0], "gating_probs": [0.4, 0.3, 0.2, 0.1]}]
    j, md = analyse(ctx, "hand", rows, 8, "--ranks", "4", "--ranks-per-node", "2")
    xo = j["analyses"]["routing_map"].get("exchange_what_if", {})
    row = (xo.get("node_limited") or [{}])[0]
    check(near(xo.get("hier_inter_node_copies_per_token"), 2.5 / 3) and near(row.get("inter_node_copies_per_token"), 0.5)
          and near(row.get("copies_saved_per_token"), 1 / 3) and near(row.get("rerouted_gate_mass"), 0.97 / 3),
          f"hand: {xo}")
    check_nl(j, md, [([0, 1, 2, 4], [0.19, 0.19, 0.19, 0.43]), ([0, 5, 6, 7], [0.4, 0.3, 0.2, 0.1]),
                     ([1, 2, 3, 0], [0.4, 0.3, 0.2, 0.1])], 8, 4, 2, 4, "hand", ctx["html"])
    # random top-4 of 16 experts, 2 layers, on 6 ranks of 2 (3 nodes, M = 1, 2)
    rng = random.Random(11)
    E, K, rows, routes = 16, 4, [], []
    for t in range(150):
        for l in range(2):
            p = [rng.random() ** 2 for _ in range(E)]
            ex = sorted(range(E), key=lambda e: -p[e])[:K]
            s = sum(p[e] for e in ex)
            w = [p[e] / s for e in ex]
            rows.append({"token_idx": t, "layer": l, "experts": ex, "gating_probs": w})
            routes.append((ex, w))
    j, md = analyse(ctx, "rand", rows, E, "--ranks", "6", "--ranks-per-node", "2")
    check_nl(j, md, routes, E, 6, 2, K, "random", ctx["html"])


# ------------------------------------------------------------------ remedies -----------

def loads_of(rows, S, L, E):
    x = np.zeros((S, L, E), dtype=np.int64)
    for r in rows:
        for e in r["experts"]:
            x[r["step"], r["layer"], e] += 1
    return x


def whatif_rate(x, cf):
    E = x.shape[2]
    dropped = 0
    for s in range(x.shape[0]):
        for l in range(x.shape[1]):
            tot = int(x[s, l].sum())
            c = math.ceil(cf * tot / E)
            dropped += int(np.maximum(0, x[s, l] - c).sum())
    return dropped / int(x.sum())


def lpt_max(w, P, per):
    load, cnt = [0.0] * P, [0] * P
    for e in sorted(range(len(w)), key=lambda e: -w[e]):
        r = min((r for r in range(P) if cnt[r] < per), key=lambda r: (load[r], r))
        load[r] += w[e]
        cnt[r] += 1
    return max(load)


def case_remedies(ctx):
    rng = random.Random(7)
    S, T, L, E, K = 12, 40, 2, 8, 2
    rows = []
    for s in range(S):
        for t in range(T):
            for l in range(L):
                if l == 0:  # collapsed: expert 3 in almost every token, the second mostly 5
                    ex = [3, 5 if rng.random() < 0.7 else rng.choice([0, 1, 2, 4, 6, 7])]
                    if rng.random() < 0.05:
                        ex = rng.sample(range(E), 2)
                else:
                    ex = rng.sample(range(E), 2)
                rows.append({"step": s, "token_idx": t, "layer": l, "experts": ex})
    P = 4
    j, md = analyse(ctx, "collapsed", rows, E, "--ranks", str(P))
    sec = j["analyses"].get("balance_remedies", {})
    if not check(sec.get("status") == "ok" and sec.get("trigger") == "collapse", f"collapsed: section {sec}"):
        return
    x = loads_of(rows, S, L, E)
    X = x.sum(axis=0)
    mm = [X[l].max() / X[l].mean() for l in range(L)]
    check(sec["worst_layer"] == 0 and near(sec["worst_max_mean"], max(mm)), f"worst {sec['worst_layer']} {sec['worst_max_mean']} != 0 {max(mm)}")
    rem = {r["id"]: r for r in sec["remedies"]}
    check(set(rem) == {"capacity_factor", "placement", "shared_expert", "aux_loss_coefficient",
                       "balance_bias", "router_z_loss", "expert_choice"}, f"remedies {sorted(rem)}")
    # qualitative ones carry no number (an imported log has no aux loss, bias or z-loss)
    for q in ("aux_loss_coefficient", "balance_bias", "router_z_loss", "expert_choice"):
        r = rem.get(q, {})
        check(r.get("kind") == "qualitative" and set(r) == {"id", "kind", "text"}
              and re.search(r"\d\.\d", r.get("text", "")) is None, f"{q} is not number-free: {r}")
    # capacity: replayed from the loads here
    c = rem["capacity_factor"]
    r1, r125 = whatif_rate(x, 1.0), whatif_rate(x, 1.25)
    cfs = [0.5, 0.75, 1, 1.25, 1.5, 2, 3, 4, 6, 8]
    target = next((cf for cf in cfs if whatif_rate(x, cf) <= 0.001), None)
    check(c["kind"] == "replayed" and near(c["drop_rate_cf1"], r1) and near(c["drop_rate_cf1_25"], r125)
          and c["capacity_factor_for_target"] == target, f"capacity {c} != {r1} {r125} {target}")
    # placement over P ranks, contiguous, loads of all layers
    w = X.sum(axis=0).astype(float)
    mean = w.sum() / P
    own = [e * P // E for e in range(E)]
    rl = [sum(w[e] for e in range(E) if own[e] == r) for r in range(P)]
    cur = max(rl)
    lpt = lpt_max(list(w), P, (E + P - 1) // P)
    hot = int(np.argmax(w))
    q = min((r for r in range(P) if r != own[hot]), key=lambda r: (rl[r], r))
    rl2 = list(rl)
    rl2[own[hot]] -= w[hot] / 2
    rl2[q] += w[hot] / 2
    p = rem["placement"]
    check(p["ranks"] == P and near(p["max_mean_rank_load"], cur / mean) and near(p["max_mean_rank_load_rebalanced"], lpt / mean)
          and near(p["max_mean_rank_load_replicated"], max(rl2) / mean) and p["replicated_expert"] == hot,
          f"placement {p} != {cur / mean} {lpt / mean} {max(rl2) / mean} expert {hot}")
    # shared expert: layer 0's dominant expert 3; max/mean of the 7 others
    se = rem["shared_expert"]["layers"]
    others = [X[0, e] for e in range(E) if e != 3]
    check(len(se) == 1 and se[0]["layer"] == 0 and se[0]["expert"] == 3 and se[0]["pattern"] == "collapse"
          and near(se[0]["max_mean_without_expert"], max(others) / np.mean(others))
          and near(se[0]["expert_token_share"], K * X[0, 3] / X[0].sum()), f"shared expert {se}")
    # Markdown prints the JSON's numbers
    for txt in (f"drop rate {100 * c['drop_rate_cf1']:.4f}% at cf 1, {100 * c['drop_rate_cf1_25']:.4f}% at cf 1.25",
                f"{p['max_mean_rank_load']:.4f}", f"{p['max_mean_rank_load_rebalanced']:.4f}",
                f"{p['max_mean_rank_load_replicated']:.4f}",
                f"max/mean without it {se[0]['max_mean_without_expert']:.4f}"):
        check(txt.replace("(", "\\(").replace(")", "\\)") in md or txt in md, f"Markdown lacks {txt!r}")
    f = [x for x in j["findings"] if x["id"] == "balance_remedies"]
    check(len(f) == 1 and f"cf {target:g} for" in f[0]["title"] and "qualitative" in f[0]["title"],
          f"collapsed: finding {f}")
    # HTML: the remedies table with the same texts (numbers included)
    check('<table id="balance-remedies">' in ctx["html"] and all(html_escape(r["text"]) in ctx["html"] for r in sec["remedies"]),
          "collapsed: HTML remedies table differs from the JSON")
    # balanced: no remedies
    rows = [{"step": s, "token_idx": t, "layer": l, "experts": rng.sample(range(E), 2)}
            for s in range(S) for t in range(T) for l in range(L)]
    j, md = analyse(ctx, "balanced", rows, E, "--ranks", str(P))
    X = loads_of(rows, S, L, E).sum(axis=0)
    check(max(X[l].max() / X[l].mean() for l in range(L)) < 1.5, "balanced log is not balanced")
    sec = j["analyses"].get("balance_remedies", {})
    check(sec.get("status") == "missing" and "not needed" in sec.get("missing", ""), f"balanced: section {sec}")
    check(not any(x["id"] == "balance_remedies" for x in j["findings"]), "balanced: remedies finding")
    check("### Load-balancing remedies\n\nmissing: not needed" in md, "balanced: Markdown section")


# ------------------------------------------------------------------ lift ---------------

def cps_sample(rng, p, k):
    """Conditional Poisson: independent Bernoulli(p_i), kept when exactly k are drawn."""
    while True:
        s = [i for i in range(len(p)) if rng.random() < p[i]]
        if len(s) == k:
            return s


def cps_expected(n, N, k):
    """Brute force over all k-subsets: fit w so P(S) ~ prod w has inclusion n / N, then the
    expected pair counts N P(i, j in S)."""
    E = len(n)
    pi = np.array(n, dtype=float) / N
    subsets = list(itertools.combinations(range(E), k))
    w = pi.copy()
    for _ in range(20000):
        pw = np.array([np.prod([w[i] for i in S]) for S in subsets])
        pw /= pw.sum()
        inc = np.zeros(E)
        for S, v in zip(subsets, pw):
            for i in S:
                inc[i] += v
        if np.max(np.abs(inc - pi)) < 1e-13:
            break
        w *= pi / inc
    pair = np.zeros((E, E))
    for S, v in zip(subsets, pw):
        for a, b in itertools.combinations(S, 2):
            pair[a, b] += v
            pair[b, a] += v
    return N * pair


def case_lift(ctx):
    rng = random.Random(3)
    for E, K, N, p in ((6, 2, 20000, [0.9, 0.6, 0.3, 0.12, 0.06, 0.04]),
                       (7, 3, 20000, [0.95, 0.8, 0.5, 0.3, 0.2, 0.1, 0.05])):
        rows, C = [], np.zeros((E, E), dtype=np.int64)
        for t in range(N):
            s = cps_sample(rng, p, K)
            rows.append({"step": t // 500, "token_idx": t % 500, "layer": 0, "experts": s})
            for a in s:
                for b in s:
                    C[a, b] += 1
        j, md = analyse(ctx, f"lift{K}", rows, E)
        cs = j["analyses"]["hotspots"].get("coselect", [])
        if not check(len(cs) == 1 and cs[0]["null"] == "conditional_poisson" and len(cs[0]["pairs"]) == 5,
                     f"top-{K}: coselect {cs}"):
            continue
        n = [int(C[i, i]) for i in range(E)]
        ref = cps_expected(n, N, K)
        old_off = 0
        for pr in cs[0]["pairs"]:
            a, b = pr["a"], pr["b"]
            check(pr["tokens"] == C[a, b], f"top-{K}: pair ({a},{b}) tokens {pr['tokens']} != {C[a, b]}")
            check(near(pr["expected"], ref[a, b], 1e-6), f"top-{K}: ({a},{b}) expected {pr['expected']} != {ref[a, b]}")
            # chance: lift 1 within 4 standard deviations of a count
            check(abs(pr["lift"] - 1) <= 4 / math.sqrt(ref[a, b]), f"top-{K}: ({a},{b}) lift {pr['lift']} is not 1")
        # the first-order formula's lift of every pair: at least one is off by > 4 sigma
        for a in range(E):
            for b in range(a + 1, E):
                qa, qb = n[a] / (K * N), n[b] / (K * N)
                first = 0.5 * (K - 1) * (n[a] * qb / (1 - qa) + n[b] * qa / (1 - qb))
                if ref[a, b] > 100 and abs(C[a, b] / first - 1) > 4 / math.sqrt(ref[a, b]):
                    old_off += 1
        check(old_off > 0, f"top-{K}: the first-order null passes too: the test cannot tell them apart")


CASES = {"node_limited": case_node_limited, "remedies": case_remedies, "lift": case_lift}


def main(argv):
    if len(argv) != 5 or argv[1] not in CASES:
        print(__doc__, file=sys.stderr)
        return 2
    ctx = dict(zip(("imp", "ana", "work"), argv[2:]))
    shutil.rmtree(ctx["work"], ignore_errors=True)
    os.makedirs(ctx["work"])
    CASES[argv[1]](ctx)
    if failures:
        print(f"check_log_rules {argv[1]}: FAILED ({len(failures)} problems)")
        return 1
    print(f"check_log_rules {argv[1]}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
