#!/usr/bin/python3
"""analyze_bench.py - moerun-analyze on a large synthetic telemetry file: time and peak RSS.

Usage: bench/analyze_bench.py MOERUN_ANALYZE [--steps 1000000] [--experts 64] [--layers 4]
           [--ranks 4] [--flush-interval 100] [--file PATH] [--keep] [--reuse]

Writes a schema-1 telemetry file with h5py (datasets chunked by flush-interval rows, as the
writer does; one sampled route per step), then runs moerun-analyze once on it with
--json/--markdown/--html outputs and prints the wall time, CPU time (user + sys) and peak
RSS of the analyser (GNU time), the per-step data it streamed, and the 1-minute load average. A benchmark, not a test: run it
by hand; the machine's load changes the figure. The file is deleted unless --keep.
"""
import argparse
import os
import resource
import subprocess
import sys
import time

import h5py
import numpy as np

RSTAT = ["gate_entropy", "gate_entropy_norm", "load_entropy", "load_entropy_norm", "top1_prob",
         "top1_top2_margin", "logit_mean", "logit_std", "logit_max", "aux_loss", "z_loss"]
PHASES = ["gate", "counts", "dispatch", "expert", "combine", "total"]
TRAFFIC = ["bytes_sent", "bytes_recv", "msgs_sent", "msgs_recv"]


def make(path, S, L, E, P, fi, T=512, K=2):
    rng = np.random.default_rng(1)
    pool_n = 4096
    # zipf-like expert popularity with per-row multinomial noise: K*P*T pairs per step, layer
    pop = 1.0 / np.arange(1, E + 1) ** 0.8
    pop /= pop.sum()
    pool = np.stack([rng.multinomial(K * P * T, rng.permutation(pop) if l else pop, size=pool_n)
                     for l in range(L)], axis=1).astype(np.int64)          # [pool][L][E]
    cap = int(np.ceil(1.25 * K * P * T / E))
    chunk = lambda shape: (min(fi, S),) + shape
    with h5py.File(path, "w") as f:
        attrs = dict(schema_version=1, experts=E, top_k=K, layers=L, d_model=1024, d_ffn=4096,
                     tokens_per_rank=T, nranks=P, nnodes=2 if P > 1 else 1, flush_interval=fi,
                     route_samples=1, steps_requested=S, seed=1, steps_completed=S)
        for k, v in attrs.items():
            f.attrs[k] = np.int64(v)
        f.attrs["capacity_factor"] = 1.25
        for k, v in (("status", "complete"), ("activation", "gelu"), ("exchange", "flat"),
                     ("workload", "bench"), ("moerun_version", "bench")):
            f.attrs[k] = v
        mk = lambda p, shape, dt: f.create_dataset(p, (S,) + shape, dtype=dt, chunks=chunk(shape))
        d_step = mk("steps/step", (), np.int64)
        d_r, d_p, d_d, d_dc = (mk("steps/" + n, (L, E), np.int64)
                               for n in ("routed", "processed", "dropped", "dropped_capacity"))
        d_c = mk("steps/capacity", (L,), np.int64)
        d_rt = mk("steps/router", (L, len(RSTAT)), np.float64)
        d_rt.attrs["columns"] = RSTAT
        d_ph = mk("steps/phase_time", (L, P, len(PHASES)), np.float64)
        d_ph.attrs["columns"] = PHASES
        d_tr = mk("steps/traffic", (L, P, len(TRAFFIC)), np.int64)
        d_tr.attrs["columns"] = TRAFFIC
        rs = lambda p, shape, dt: f.create_dataset(p, (S,) + shape, dtype=dt, chunks=chunk(shape))
        r_step, r_tok = rs("routes/step", (), np.int64), rs("routes/token", (), np.int64)
        r_ex, r_w = rs("routes/expert", (L, K), np.int32), rs("routes/weight", (L, K), np.float32)
        r_k = rs("routes/kept", (L, K), np.uint8)
        B = 20000
        for s0 in range(0, S, B):
            n = min(B, S - s0)
            idx = (np.arange(s0, s0 + n) * 7919) % pool_n
            x = pool[idx]
            d = np.maximum(x - cap, 0)
            sl = slice(s0, s0 + n)
            d_step[sl] = np.arange(s0, s0 + n)
            d_r[sl], d_p[sl], d_d[sl], d_dc[sl] = x, x - d, d, d
            d_c[sl] = np.full((n, L), cap)
            rt = rng.random((n, L, len(RSTAT)))
            d_rt[sl] = rt
            ph = np.broadcast_to(np.array([1e-4, 5e-5, 3e-4, 8e-4, 3e-4, 1.6e-3]), (n, L, P, 6))
            d_ph[sl] = ph
            d_tr[sl] = np.broadcast_to(np.array([40000, 40000, 6, 6], dtype=np.int64), (n, L, P, 4))
            r_step[sl] = np.arange(s0, s0 + n)
            r_tok[sl] = (np.arange(s0, s0 + n) * 31) % (P * T)
            r_ex[sl] = rng.integers(0, E, (n, L, K), dtype=np.int32)
            r_w[sl] = np.broadcast_to(np.array([0.7, 0.3], dtype=np.float32), (n, L, K))
            r_k[sl] = 1
        ev = f.create_dataset("events", (0,), maxshape=(None,), chunks=(64,),
                              dtype=np.dtype([("step", "<i8"), ("layer", "<i4"), ("expert", "<i4"),
                                              ("kind", "<i4"), ("value", "<f8"), ("threshold", "<f8"),
                                              ("message", "S160")]))
        ev.attrs["kind_names"] = ["starved_expert"]
        f.create_dataset("accumulated/coselect", data=np.zeros((L, E, E), dtype=np.int64))
        f.create_dataset("accumulated/traffic_matrix", data=np.full((P, P), 1000, dtype=np.int64))
        f["accumulated"].attrs["steps"] = np.int64(S)
        f.create_dataset("topology/hostname", data=np.array([b"h%d" % (r * 2 // P) for r in range(P)], dtype="S64"))
        f.create_dataset("topology/node", data=np.array([r * 2 // P for r in range(P)], dtype=np.int32))
        f.create_dataset("topology/local_rank", data=np.array([r % (P // 2 or 1) for r in range(P)], dtype=np.int32))
        f.create_dataset("topology/cpuset", data=np.array([b""] * P, dtype="S64"))
        f.create_dataset("topology/numa_node", data=np.zeros(P, dtype=np.int32))
        f.create_dataset("placement/expert_owner", data=np.array([e * P // E for e in range(E)], dtype=np.int32))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("analyze")
    ap.add_argument("--steps", type=int, default=1000000)
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--ranks", type=int, default=4)
    ap.add_argument("--flush-interval", type=int, default=100)
    ap.add_argument("--file", default="analyze_bench.h5")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="analyse an existing --file")
    a = ap.parse_args()
    if not (a.reuse and os.path.exists(a.file)):
        t0 = time.time()
        make(a.file, a.steps, a.layers, a.experts, a.ranks, a.flush_interval)
        print(f"# generated {a.file}: {os.path.getsize(a.file) / 2**30:.2f} GiB in {time.time() - t0:.1f} s")
    out = os.path.splitext(a.file)[0]
    cmd = [a.analyze, a.file, "--json", out + ".json", "--markdown", out + ".md", "--html",
           out + ".html"]
    # peak RSS from GNU time when present (getrusage of a child forked from this large
    # Python process can report the parent's pages)
    gnu_time = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None
    t0 = time.time()
    p = subprocess.run(([gnu_time, "-f", "MAXRSS_KB %M CPU_S %U %S"] if gnu_time else []) + cmd,
                       capture_output=True, text=True)
    wall = time.time() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    cpu = float("nan")
    for line in p.stderr.splitlines():
        if line.startswith("MAXRSS_KB "):
            f = line.split()
            rss = int(f[1]) / 1024.0
            cpu = float(f[3]) + float(f[4])
    print("# " + " ".join(cmd))
    if p.returncode != 0:
        print(p.stderr, file=sys.stderr)
        return 1
    per_step = (a.layers * a.experts * 8 * 3 + a.layers * 8 * (1 + len(RSTAT))
                + a.layers * a.ranks * 8 * (len(PHASES) + len(TRAFFIC)))
    print("# steps  layers  experts  ranks  flush  file_GiB  read_GiB  time_s  cpu_s  peak_RSS_MiB  GiB/s  load1")
    print(f"  {a.steps:7d}  {a.layers:6d}  {a.experts:7d}  {a.ranks:5d}  {a.flush_interval:5d}  "
          f"{os.path.getsize(a.file) / 2**30:8.2f}  {per_step * a.steps / 2**30:8.2f}  {wall:6.2f}  "
          f"{cpu:5.2f}  {rss:12.1f}  {per_step * a.steps / 2**30 / wall:5.2f}  {os.getloadavg()[0]:5.2f}")
    if not a.keep:
        os.remove(a.file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
