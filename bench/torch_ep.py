#!/usr/bin/env python3
"""torch_ep.py — a PyTorch expert-parallel MoE layer, the peer moerun-bench is compared with.

    /usr/bin/python3 bench/torch_ep.py [--ranks 2] [--tokens 1024] [--d-model 512]
        [--d-ffn 1024] [--experts 8] [--top-k 2] [--capacity-factor 1.25] [--steps 30]
        [--warmup 3] [--json FILE]

The usual CPU expert-parallel recipe (GShard/DeepSpeed style): one process per rank, one
thread each (torch.set_num_threads(1), like OPENBLAS_NUM_THREADS=1 for moerun), gloo
process group; per step and rank: gate (x Wg, softmax, top-k, weights renormalised),
capacity-padded dispatch (each expert takes at most ceil(cf * k * T / E) of this rank's
pairs, in token order; the rest are dropped), all_to_all_single of the padded [E, C, d]
tensor, experts as batched GEMMs (GELU FFN, the same shapes as moerun's), all_to_all_single
back, weighted combine plus the residual. Experts are placed contiguously, E/P per rank.

Prints the median step time over steps (slowest rank of each step) and tokens/s =
ranks * tokens / that median. Not a test. Needs Debian's python3-torch (not installed by
jobs/install-deps.sh: `apt-get install python3-torch`). Run it in the same session as
moerun-bench and compare the two ratios, not absolute figures, on a shared machine.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time


def worker(rank, a, port, q):
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=a.ranks)
    P, T, d, f, E, k = a.ranks, a.tokens, a.d_model, a.d_ffn, a.experts, a.top_k
    El = E // P
    C = math.ceil(a.capacity_factor * k * T / E)
    g = torch.Generator().manual_seed(42)
    wg = torch.randn(d, E, generator=g) / math.sqrt(d)
    g.manual_seed(1000 + rank)
    w1 = torch.randn(El, d, f, generator=g) / math.sqrt(d)
    w2 = torch.randn(El, f, d, generator=g) / math.sqrt(f)
    times, dropped = [], 0
    for step in range(a.warmup + a.steps):
        x = torch.randn(T, d, generator=g)
        t0 = time.perf_counter()
        probs = torch.softmax(x @ wg, dim=1)
        topv, topi = torch.topk(probs, k, dim=1)
        w = topv / topv.sum(dim=1, keepdim=True)
        ex = topi.reshape(-1)                                   # [T*k], token-major
        pos = torch.cumsum(F.one_hot(ex, E), dim=0).gather(1, ex[:, None])[:, 0] - 1
        keep = pos < C
        tok = torch.arange(T).repeat_interleave(k)[keep]
        idx = ex[keep] * C + pos[keep]
        buf = torch.zeros(E * C, d)
        buf.index_copy_(0, idx, x[tok])
        recv = torch.empty_like(buf)
        dist.all_to_all_single(recv, buf)                       # [P][El][C][d]
        h = recv.view(P, El, C, d).permute(1, 0, 2, 3).reshape(El, P * C, d)
        y = torch.bmm(F.gelu(torch.bmm(h, w1)), w2)
        back = y.view(El, P, C, d).permute(1, 0, 2, 3).contiguous().view(E * C, d)
        ret = torch.empty_like(back)
        dist.all_to_all_single(ret, back)                       # [E][C][d] at the origin
        out = x.clone()
        out.index_add_(0, tok, ret[idx] * w.reshape(-1)[keep][:, None])
        t = time.perf_counter() - t0
        if step >= a.warmup:
            times.append(t)
            dropped += int((~keep).sum())
    tt = torch.tensor(times, dtype=torch.float64)
    dist.all_reduce(tt, op=dist.ReduceOp.MAX)
    dt = torch.tensor([dropped], dtype=torch.int64)
    dist.all_reduce(dt)
    if rank == 0:
        q.put((tt.tolist(), int(dt[0])))
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--tokens", type=int, default=1024)
    p.add_argument("--d-model", type=int, default=512)
    p.add_argument("--d-ffn", type=int, default=1024)
    p.add_argument("--experts", type=int, default=8)
    p.add_argument("--top-k", type=int, default=2)
    p.add_argument("--capacity-factor", type=float, default=1.25)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--port", type=int, default=29500 + os.getpid() % 1000)
    p.add_argument("--json")
    a = p.parse_args()
    if a.ranks < 1 or a.experts % a.ranks or not 1 <= a.top_k <= a.experts or a.steps < 1:
        sys.exit("torch_ep: need ranks >= 1 dividing experts, 1 <= top-k <= experts, steps >= 1")
    try:
        import torch.multiprocessing as mp
    except ImportError:
        sys.exit("torch_ep: PyTorch is missing: apt-get install python3-torch")
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, a, a.port, q)) for r in range(a.ranks)]
    for pr in procs:
        pr.start()
    times, dropped = q.get()
    for pr in procs:
        pr.join()
        if pr.exitcode != 0:
            sys.exit(f"torch_ep: a rank exited with {pr.exitcode}")
    med = statistics.median(times)
    tps = a.ranks * a.tokens / med
    routed = a.ranks * a.tokens * a.top_k * a.steps
    print(f"# torch_ep: {a.ranks} ranks (gloo, 1 thread each), E={a.experts} top-{a.top_k}, "
          f"d={a.d_model} ffn={a.d_ffn} gelu, {a.tokens} tokens/rank, cf {a.capacity_factor}, "
          f"{a.steps} steps (+{a.warmup} warm-up), torch {__import__('torch').__version__}")
    print(f"  step time ms  min {1e3 * min(times):.3f}  median {1e3 * med:.3f}  max {1e3 * max(times):.3f}")
    print(f"  tokens/s      {tps:.0f}")
    print(f"  drop rate     {dropped / routed:.4f}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"ranks": a.ranks, "tokens_per_rank": a.tokens, "d_model": a.d_model,
                       "d_ffn": a.d_ffn, "experts": a.experts, "top_k": a.top_k,
                       "capacity_factor": a.capacity_factor, "steps": a.steps,
                       "step_s": {"min": min(times), "median": med, "max": max(times)},
                       "tokens_per_s": tps, "drop_rate": dropped / routed}, fh)
            fh.write("\n")


if __name__ == "__main__":
    main()
