#!/usr/bin/python3
"""smpi_study.py — communication overhead of expert parallelism at 64-1024 simulated ranks.

    bench/smpi_study.py --out DIR [--ranks 64,256,1024] [--ranks-per-node 8]
        [--exchanges flat,hier,2dh] [--routers topk] [--tokens 256] [--d-model 512]
        [--d-ffn 1024] [--experts 64 | --experts-per-rank F] [--top-k 8] [--steps 3] [--preset ib100]
        [--topology flat] [--nic-gbit G[,G2...]] [--sim-gflops X] [--sim-copy-gbs Y] [--route-max-nodes M]
        [--overlap-window W] [--overlap 0|1] [--hier-chunks N]

Runs moerun's own source, built with SimGrid's smpicc (jobs/smpi/build.sh), on a generated
platform (jobs/smpi/platform.py) for every point of the grid ranks x exchange x router x
tokens x d_model (E fixed, or E = F x ranks with --experts-per-rank, so that every rank holds
experts as the cluster grows), then reads each run's telemetry (h5py) and writes:
  DIR/study.csv, DIR/study.json  one row per point: simulated dispatch + combine seconds per
                                  step (mean over ranks, summed over layers), the same for the
                                  busiest rank, the mean without combine's wait for other
                                  ranks' experts (comm_nowait_s_mean), step time, bytes per step inside and across
                                  nodes, messages across nodes, and what the point cost to
                                  simulate (wall and CPU seconds);
  DIR/study.svg                   dispatch + combine per step against ranks, one line per
                                  exchange and router;
  DIR/crossovers.txt              for each exchange against flat: the rank count where it
                                  starts to pay (interpolated between grid points, or "not in
                                  range"); with several --nic-gbit values, also what each
                                  faster NIC buys (dispatch + combine against the first NIC).
These are MODEL results: SimGrid's flow-level network model of the generated platform, with
compute and copies charged from sim_gflops and sim_copy_gbs (docs/simulation.md). The model
leaves out: on-node transfers beyond the host's loopback link (no memory-bandwidth
contention between the ranks of a node), NIC message-rate limits and packet-level effects,
OS noise, MPI progress-engine costs, and the time of the gate beyond its FLOPs. Routers other
than top-k need a build that has them (--routers node-limited adds --router node-limited).
"""
import argparse
import csv
import json
import math
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def fail(msg, code=2):
    print("smpi_study: " + msg, file=sys.stderr)
    sys.exit(code)


def floats(name, s):
    try:
        v = [float(x) for x in s.split(",") if x]
    except ValueError:
        fail("%s: %r: allowed a comma-separated list of numbers" % (name, s))
    if not v or min(v) <= 0 or max(v) > 1e5:
        fail("%s: %r: allowed numbers in (0, 100000] Gbit/s" % (name, s))
    return v


def ints(name, s):
    try:
        v = [int(x) for x in s.split(",") if x]
    except ValueError:
        fail("%s: %r: allowed a comma-separated list of integers" % (name, s))
    if not v or min(v) < 1:
        fail("%s: %r: allowed positive integers" % (name, s))
    return v


def read_point(path):
    import h5py  # Debian python3-h5py (use /usr/bin/python3)
    import numpy as np

    with h5py.File(path, "r") as f:
        cols = [c.decode() if isinstance(c, bytes) else c for c in f["steps/phase_time"].attrs["columns"]]
        tcols = [c.decode() if isinstance(c, bytes) else c for c in f["steps/traffic"].attrs["columns"]]
        ph = f["steps/phase_time"][()]   # [S][L][P][phase]
        tr = f["steps/traffic"][()]      # [S][L][P][counter]
        comm = ph[:, :, :, cols.index("dispatch")] + ph[:, :, :, cols.index("combine")]
        per_rank = comm.sum(axis=1)      # [S][P]: over layers
        # without combine's wait for other ranks' experts: the exchange alone (with E < P
        # most ranks otherwise mostly wait for the few expert ranks' compute)
        nowait = per_rank - ph[:, :, :, cols.index("combine_wait")].sum(axis=1)
        total = ph[:, :, :, cols.index("total")].sum(axis=1)
        routed = f["steps/routed"][()]
        dropped = f["steps/dropped"][()]
        S = ph.shape[0]
        return {
            "comm_s_mean": float(per_rank.mean()),
            "comm_s_max": float(per_rank.max(axis=1).mean()),
            "comm_nowait_s_mean": float(nowait.mean()),
            "step_s": float(total.max(axis=1).mean()),
            "bytes_inter_per_step": float(tr[:, :, :, tcols.index("bytes_inter")].sum() / S),
            "bytes_intra_per_step": float(tr[:, :, :, tcols.index("bytes_intra")].sum() / S),
            "msgs_inter_per_step": float(tr[:, :, :, tcols.index("msgs_inter")].sum() / S),
            "routed": int(routed.sum()),
            "dropped": int(dropped.sum()),
        }


def write_csv(rows, out):
    tmp = os.path.join(out, "study.csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, os.path.join(out, "study.csv"))


def svg(rows, path, title):
    series = {}
    for r in rows:
        key = "%s/%s t%d d%d%s" % (r["exchange"], r["router"], r["tokens"], r["d_model"],
                                   " nic %g" % r["nic_gbit"] if r["nic_gbit"] else "")
        series.setdefault(key, []).append((r["ranks"], r["comm_s_mean"] * 1e3))
    xs = sorted({r["ranks"] for r in rows})
    ys = [y for s in series.values() for _, y in s]
    if not xs or not ys:
        return
    W, H, L, B, T, R = 720, 420, 70, 50, 40, 200
    lx0, lx1 = math.log2(min(xs)), math.log2(max(xs))
    ymax = max(ys) * 1.1 or 1.0
    # round tick step
    raw = ymax / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw))
    ymax = step * math.ceil(ymax / step)

    def X(x):
        return L + (0 if lx1 == lx0 else (math.log2(x) - lx0) / (lx1 - lx0)) * (W - L - R)

    def Y(y):
        return H - B - y / ymax * (H - B - T)

    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (W, H),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="20" font-size="14">%s</text>' % (L, title),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (L, H - B, W - R, H - B),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (L, T, L, H - B)]
    for x in xs:
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (X(x), H - B + 16, x))
    out.append('<text x="%d" y="%d" text-anchor="middle">simulated ranks (log scale)</text>' % ((L + W - R) // 2, H - 12))
    y = 0.0
    while y <= ymax + 1e-12:
        out.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (L - 6, Y(y) + 4, round(y, 10)))
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (L, Y(y), W - R, Y(y)))
        y += step
    out.append('<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">dispatch + combine per step (ms, model)</text>' % ((T + H - B) // 2, (T + H - B) // 2))
    for i, (key, pts) in enumerate(sorted(series.items())):
        c = colors[i % len(colors)]
        pts.sort()
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' %
                   (c, " ".join("%.1f,%.1f" % (X(x), Y(v)) for x, v in pts)))
        for x, v in pts:
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (X(x), Y(v), c))
        out.append('<text x="%d" y="%d" fill="%s">%s</text>' % (W - R + 10, T + 16 * i + 10, c, key))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def crossovers(rows):
    lines = []
    groups = {}
    for r in rows:
        groups.setdefault((r["router"], r["tokens"], r["d_model"], r["nic_gbit"] or 0), {}).setdefault(r["exchange"], {})[r["ranks"]] = r["comm_s_mean"]
    for (router, t, d, nic), ex in sorted(groups.items()):
        if "flat" not in ex:
            continue
        for name, pts in sorted(ex.items()):
            if name == "flat":
                continue
            xs = sorted(set(pts) & set(ex["flat"]))
            where = None
            prev = None
            for x in xs:
                gain = ex["flat"][x] - pts[x]  # > 0: the alternative is faster
                if gain > 0:
                    if prev is None:
                        where = "already at %d ranks (smallest simulated)" % x
                    else:
                        x0, g0 = prev
                        f = g0 / (g0 - gain) if g0 != gain else 0.0
                        xc = 2 ** (math.log2(x0) + f * (math.log2(x) - math.log2(x0)))
                        where = "between %d and %d ranks (~%d, log-interpolated)" % (x0, x, round(xc))
                    break
                prev = (x, gain)
            if where is None:
                where = "not in range (flat faster up to %d ranks)" % max(xs) if xs else "no common points"
            lines.append("%s vs flat, router %s, tokens %d, d %d%s: %s" % (
                name, router, t, d, ", NIC %g Gbit/s" % nic if nic else "", where))
    return lines


def nic_gains(rows):
    """What each faster NIC buys: dispatch + combine per step against the first NIC given."""
    groups = {}
    for r in rows:
        if r["nic_gbit"]:
            groups.setdefault((r["exchange"], r["router"], r["ranks"], r["tokens"], r["d_model"]),
                              []).append((r["nic_gbit"], r["comm_s_mean"], r["comm_nowait_s_mean"]))
    lines = []
    for (ex, router, p, t, d), pts in sorted(groups.items()):
        n0, c0, w0 = pts[0]
        for n, c, w in pts[1:]:
            lines.append("%s/%s, %d ranks, tokens %d, d %d: NIC %g -> %g Gbit/s (%.3gx): "
                         "dispatch+combine %.3f -> %.3f ms/step (%.2fx the time); without "
                         "combine's wait for other ranks' experts %.3f -> %.3f (%.2fx)"
                         % (ex, router, p, t, d, n0, n, n / n0, c0 * 1e3, c * 1e3, c / c0,
                            w0 * 1e3, w * 1e3, w / w0 if w0 > 0 else float("nan")))
    return lines


def main():
    ap = argparse.ArgumentParser(description="simulated communication study (docs/simulation.md)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--ranks", default="64,256,1024")
    ap.add_argument("--ranks-per-node", type=int, default=8)
    ap.add_argument("--exchanges", default="flat,hier,2dh")
    ap.add_argument("--routers", default="topk")
    ap.add_argument("--route-max-nodes", type=int, default=1)
    ap.add_argument("--tokens", default="256")
    ap.add_argument("--d-model", default="512")
    ap.add_argument("--d-ffn", type=int, default=1024)
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--experts-per-rank", type=float, default=0,
                    help="E = round(F x ranks) at every point (overrides --experts)")
    ap.add_argument("--top-k", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--preset", default="ib100")
    ap.add_argument("--topology", default="flat")
    ap.add_argument("--nic-gbit", default="",
                    help="NIC Gbit/s (the preset's if absent); a comma-separated list sweeps it")
    ap.add_argument("--sim-gflops", type=float, default=100.0)
    ap.add_argument("--sim-copy-gbs", type=float, default=10.0)
    ap.add_argument("--workload", default="uniform")
    ap.add_argument("--overlap-window", type=int, default=2,
                    help="flat: moerun --overlap-window (2 keeps 1024 ranks to minutes of CPU; "
                         "the simulated step is ~1%% slower than with moerun's default 8; hier: "
                         "inter-node transfers in flight per rank)")
    ap.add_argument("--overlap", type=int, default=1, choices=(0, 1),
                    help="flat: moerun --overlap (0: exchange, then experts, then exchange; with "
                         "E close to P the overlapped path's bounded windows can serialise it)")
    ap.add_argument("--hier-chunks", type=int, default=1,
                    help="hier: moerun --hier-chunks (1, the default here: stages in sequence, "
                         "blocking waits; the pipelined form's poll loops cost the simulation "
                         "minutes of CPU at 256 ranks)")
    a = ap.parse_args()
    if not 1 <= a.hier_chunks <= 64:
        fail("--hier-chunks: %d: allowed 1..64" % a.hier_chunks)
    ranks = ints("--ranks", a.ranks)
    tokens = ints("--tokens", a.tokens)
    dms = ints("--d-model", a.d_model)
    nics = floats("--nic-gbit", a.nic_gbit) if a.nic_gbit else [None]
    rpn = a.ranks_per_node
    for p in ranks:
        if p % rpn:
            fail("--ranks: %d is not a multiple of --ranks-per-node %d" % (p, rpn))
    exchanges = [x for x in a.exchanges.split(",") if x]
    for x in exchanges:
        if x not in ("flat", "hier", "2dh"):
            fail("--exchanges: %r: allowed flat, hier, 2dh (ucx does not run under SMPI)" % x)
    routers = [x for x in a.routers.split(",") if x]
    for x in routers:
        if x not in ("topk", "node-limited"):
            fail("--routers: %r: allowed topk, node-limited" % x)
    smpi_build = os.environ.get("MOERUN_SMPI_BUILD_DIR", os.path.join(ROOT, "build-smpi"))
    if not os.access(os.path.join(smpi_build, "moerun"), os.X_OK):
        fail("%s/moerun not built: run jobs/smpi/build.sh" % smpi_build, 1)
    os.makedirs(a.out, exist_ok=True)
    rows = []
    if a.experts_per_rank < 0:
        fail("--experts-per-rank: %g: allowed > 0 (0: use --experts)" % a.experts_per_rank)
    for p in ranks:
        E = int(round(a.experts_per_rank * p)) if a.experts_per_rank > 0 else a.experts
        if E < a.top_k:
            fail("%d ranks: %d experts < --top-k %d" % (p, E, a.top_k))
        for nic in nics:
            pdir = os.path.join(a.out, "platform-%d" % p + ("-nic%g" % nic if nic else ""))
            cmd = [os.path.join(ROOT, "jobs/smpi/platform.py"), "--nodes", str(p // rpn),
                   "--ranks-per-node", str(rpn), "--preset", a.preset, "--topology", a.topology,
                   "--out", pdir]
            if nic:
                cmd += ["--nic-gbit", repr(nic)]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            for ex in exchanges:
                for router in routers:
                    for t in tokens:
                        for d in dms:
                            tag = "p%d-%s-%s-t%d-d%d" % (p, ex, router, t, d) + ("-nic%g" % nic if nic else "")
                            h5 = os.path.join(a.out, tag + ".h5")
                            if os.path.exists(h5):
                                os.unlink(h5)
                            args = ["--experts", str(E), "--top-k", str(a.top_k),
                                    "--tokens", str(t), "--d-model", str(d), "--d-ffn", str(a.d_ffn),
                                    "--layers", str(a.layers), "--steps", str(a.steps),
                                    "--exchange", ex, "--workload", a.workload, "--quiet",
                                    "--route-samples", "0", "--sim-gflops", str(a.sim_gflops),
                                    "--sim-copy-gbs", str(a.sim_copy_gbs),
                                    "--overlap-window", str(a.overlap_window),
                                    "--hier-chunks", str(a.hier_chunks),
                                    "--overlap", str(a.overlap), "--telemetry", h5]
                            if router == "node-limited":
                                args += ["--router", "node-limited", "--route-max-nodes", str(a.route_max_nodes)]
                            # rows are shared between simulated ranks by the exchanges themselves
                            # under the model (comm/a2a_common.h): no --shared-malloc needed
                            run = [os.path.join(ROOT, "jobs/smpi/run.sh"), "--platform-dir", pdir]
                            t0 = time.time()
                            u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                            r = subprocess.run(run + ["--"] + args, stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT, text=True)
                            wall = time.time() - t0
                            u1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                            cpu = (u1.ru_utime - u0.ru_utime) + (u1.ru_stime - u0.ru_stime)
                            if r.returncode != 0:
                                print(r.stdout[-3000:])
                                fail("point %s failed (exit %d)" % (tag, r.returncode), 1)
                            row = {"ranks": p, "nodes": p // rpn, "ranks_per_node": rpn, "exchange": ex,
                                   "router": router, "tokens": t, "d_model": d, "d_ffn": a.d_ffn,
                                   "experts": E, "top_k": a.top_k, "preset": a.preset,
                                   "topology": a.topology, "nic_gbit": nic or "",
                                   "overlap_window": a.overlap_window, "overlap": a.overlap,
                                   "hier_chunks": a.hier_chunks, "wall_s": round(wall, 1),
                                   "cpu_s": round(cpu, 1)}
                            row.update(read_point(h5))
                            rows.append(row)
                            print("smpi_study: %-32s dispatch+combine %.3f ms/step (busiest rank %.3f), "
                                  "inter-node %.1f MB/step, %.0f s wall, %.0f s CPU" %
                                  (tag, row["comm_s_mean"] * 1e3, row["comm_s_max"] * 1e3,
                                   row["bytes_inter_per_step"] / 1e6, wall, cpu), flush=True)
                            os.unlink(h5)
                            write_csv(rows, a.out)  # after every point: an interrupted study keeps its rows
    note = ("MODEL results from SimGrid SMPI (docs/simulation.md), not measurements: on-node "
            "transfers go through each host's loopback link without memory contention; NIC "
            "message rates, packet effects, OS noise and MPI progress costs are not modelled; "
            "compute and copies are charged at sim_gflops / sim_copy_gbs.")
    cross = crossovers(rows)
    gains = nic_gains(rows)
    with open(os.path.join(a.out, "study.json"), "w") as f:
        json.dump({"note": note, "rows": rows, "crossovers": cross, "nic_gains": gains}, f, indent=1)
    with open(os.path.join(a.out, "crossovers.txt"), "w") as f:
        f.write(note + "\n\n" + "\n".join(cross) + "\n" +
                ("\nWhat a faster NIC buys (model):\n" + "\n".join(gains) + "\n" if gains else ""))
    svg(rows, os.path.join(a.out, "study.svg"),
        "moerun: simulated dispatch+combine, E %s top-%d, %s %s"
        % ("%g x ranks" % a.experts_per_rank if a.experts_per_rank > 0 else str(a.experts),
           a.top_k, a.preset, a.topology))
    print(note)
    for c in cross:
        print("crossover: " + c)
    for g in gains:
        print("nic: " + g)


if __name__ == "__main__":
    main()
