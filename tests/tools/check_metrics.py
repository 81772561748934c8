#!/usr/bin/env python3
"""check_metrics.py MPIEXEC MOERUN WORKDIR — live metrics read back through Debian's real
prometheus-node-exporter (textfile collector on a loopback port chosen free).

  1. starts /usr/bin/prometheus-node-exporter with only the textfile collector, on
     127.0.0.1:PORT, reading WORKDIR/prom/;
  2. starts a 2-rank moerun with --metrics-file WORKDIR/prom/moerun.prom --metrics-interval
     0.05 and many steps; scrapes http://127.0.0.1:PORT/metrics until it has seen the run
     "running" at two different step counts (counters not decreasing between them), then
     stops the run with SIGUSR1 to mpirun (clean stop: status "interrupted");
  3. scrapes the final file and checks it against the run's summary JSON (steps, pairs,
     drop rate, max/mean load, entropy, alerts, tokens/s) and rank 0's phase seconds and
     bytes against steps/phase_time and steps/traffic of the telemetry file (h5py);
  4. a metrics path in a missing directory: exit 2 before any compute, message naming
     metrics_file, no telemetry file written;
  5. kills the exporter it started (and only that one).
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import h5py

mpiexec, moerun, work = sys.argv[1:4]
exporter_bin = os.environ.get("NODE_EXPORTER", "/usr/bin/prometheus-node-exporter")
prom = os.path.join(work, "prom")
os.makedirs(prom, exist_ok=True)
for name in os.listdir(prom):
    os.unlink(os.path.join(prom, name))
for name in ("metrics.h5", "metrics.json", "bad.h5"):
    if os.path.exists(os.path.join(work, name)):
        os.unlink(os.path.join(work, name))

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def parse(text):
    """{(name, frozenset(labels)): value} of the moerun_ and node_textfile_ samples."""
    out = {}
    for ln in text.splitlines():
        if ln.startswith("#") or not ln.strip():
            continue
        m = LINE.match(ln)
        assert m, f"unparseable exposition line: {ln!r}"
        name, labels, val = m.groups()
        if not (name.startswith("moerun_") or name.startswith("node_textfile")):
            continue
        lab = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or ""))
        out[(name, lab)] = float(val)
    return out


def get(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    assert key in samples, f"metric {name}{labels} not exported"
    return samples[key]


def status_of(samples):
    st = [dict(k[1])["status"] for k in samples if k[0] == "moerun_run_status"]
    return st[0] if st else None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scrape(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return parse(r.read().decode())


env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_mpi_yield_when_idle="1",
           OPENBLAS_NUM_THREADS="1")
small = ["--experts", "8", "--top-k", "2", "--d-model", "16", "--d-ffn", "16", "--layers", "2",
         "--tokens", "64", "--capacity-factor", "1.0", "--workload", "zipf:1.2", "--seed", "3",
         "--flush-interval", "5", "--progress-interval", "0", "--quiet"]

exporter = None
run = None
try:
    # the exporter is not ours: keep the sanitizer runs' preloaded shim and options out of it
    exp_env = {k: v for k, v in os.environ.items()
               if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS")}
    for attempt in range(5):
        port = free_port()
        exporter = subprocess.Popen(
            [exporter_bin, "--collector.disable-defaults", "--collector.textfile",
             "--collector.textfile.directory", prom, "--web.listen-address", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=exp_env)
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.time() + 15
        up = False
        while time.time() < deadline and exporter.poll() is None:
            try:
                scrape(url)
                up = True
                break
            except OSError:
                time.sleep(0.1)
        if up:
            break
        exporter.kill()
        exporter.wait()
        exporter = None        # port taken in between: try another
    assert exporter is not None, "prometheus-node-exporter did not come up"
    assert not any(k[0].startswith("moerun_") for k in scrape(url)), "metrics before the run"

    # 2. a live run, scraped while it goes on
    run = subprocess.Popen([mpiexec, "-np", "2", moerun, *small, "--steps", "1000000",
                            "--metrics-file", os.path.join(prom, "moerun.prom"),
                            "--metrics-interval", "0.05",
                            "--telemetry", os.path.join(work, "metrics.h5"),
                            "--summary-json", os.path.join(work, "metrics.json")],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = []
    deadline = time.time() + 90
    while time.time() < deadline and run.poll() is None:
        s = scrape(url)
        if status_of(s) == "running":
            steps = get(s, "moerun_steps_done")
            if not seen or steps > get(seen[-1], "moerun_steps_done"):
                seen.append(s)
            if len(seen) >= 2 and get(s, "moerun_steps_flushed") >= 5:
                break
        time.sleep(0.05)
    assert run.poll() is None, "run ended before it was seen running: " + run.stdout.read().decode()
    assert len(seen) >= 2, f"saw the run running at {len(seen)} step counts in 90 s"
    a, b = seen[0], seen[-1]
    for name in ("moerun_routed_pairs_total", "moerun_dropped_pairs_total",
                 "moerun_alerts_raised_total", "moerun_steps_flushed"):
        assert get(b, name) >= get(a, name), (name, get(a, name), get(b, name))
    for ph in ("gate", "expert", "total"):
        assert get(b, "moerun_phase_seconds_total", rank="0", phase=ph) >= \
            get(a, "moerun_phase_seconds_total", rank="0", phase=ph)
    # live pair counters cover the flushed steps: routed = flushed steps x L x G x k
    assert get(b, "moerun_routed_pairs_total") == get(b, "moerun_steps_flushed") * 2 * 128 * 2
    assert get(b, "moerun_processed_pairs_total") + get(b, "moerun_dropped_pairs_total") == \
        get(b, "moerun_routed_pairs_total")
    assert get(b, "node_textfile_scrape_error") == 0
    live_steps = get(b, "moerun_steps_done")

    run.send_signal(signal.SIGUSR1)       # mpirun forwards it: a clean, interrupted stop
    out = run.communicate(timeout=60)[0].decode()
    run = None

    # 3. the final file against the summary and the telemetry
    s = scrape(url)
    summ = json.load(open(os.path.join(work, "metrics.json")))
    assert summ["status"] == "interrupted", (summ["status"], out)
    assert status_of(s) == "interrupted", status_of(s)
    assert get(s, "moerun_steps_done") == summ["steps_completed"] >= live_steps
    assert get(s, "moerun_steps_flushed") == summ["steps_completed"]
    assert get(s, "moerun_steps_requested") == summ["steps_requested"]
    assert get(s, "moerun_ranks") == summ["ranks"] == 2
    for metric, key in (("routed_pairs_total", "routed"), ("processed_pairs_total", "processed"),
                        ("dropped_pairs_total", "dropped"), ("alerts_raised_total", "alerts_raised")):
        assert get(s, "moerun_" + metric) == summ[key], (metric, get(s, "moerun_" + metric), summ[key])
    for metric, key in (("tokens_per_second", "tokens_per_s"), ("drop_rate", "drop_rate"),
                        ("max_mean_load", "max_mean_load"), ("load_entropy_norm", "load_entropy_norm"),
                        ("gate_entropy_norm", "gate_entropy_norm"), ("top1_prob", "top1_prob"),
                        ("aux_loss", "aux_loss")):
        v, w = get(s, "moerun_" + metric), summ[key]
        assert abs(v - w) <= 1e-12 * max(1.0, abs(w)), (metric, v, w)
    info = [dict(k[1]) for k in s if k[0] == "moerun_info"][0]
    assert info["exchange"] == summ["exchange"] and info["workload"] == summ["workload"], info
    f = h5py.File(os.path.join(work, "metrics.h5"), "r")
    ph = f["steps/phase_time"][()]
    cols = [c.decode() if isinstance(c, bytes) else str(c) for c in f["steps/phase_time"].attrs["columns"]]
    assert ph.shape[0] == summ["steps_completed"]
    for c, name in enumerate(cols):
        v, w = get(s, "moerun_phase_seconds_total", rank="0", phase=name), ph[:, :, 0, c].sum()
        assert abs(v - w) <= 1e-9 * max(1.0, w), (name, v, w)
    tcols = [c.decode() if isinstance(c, bytes) else str(c) for c in f["steps/traffic"].attrs["columns"]]
    tr = f["steps/traffic"][()]
    for kind in ("sent", "intra", "inter"):
        col = tcols.index("bytes_" + kind)
        assert get(s, "moerun_exchange_bytes_total", rank="0", kind=kind) == tr[:, :, 0, col].sum()
    assert sorted(os.listdir(prom)) == ["moerun.prom"], os.listdir(prom)   # no temporary left

    # 4. bad path: clear message, exit 2... or 1, nothing written
    r = subprocess.run([mpiexec, "-np", "2", moerun, *small, "--steps", "2",
                        "--metrics-file", os.path.join(work, "no-such-dir", "m.prom"),
                        "--telemetry", os.path.join(work, "bad.h5")],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "metrics_file" in r.stderr, (r.returncode, r.stderr)
    assert not os.path.exists(os.path.join(work, "bad.h5")), "telemetry written despite the error"
    print(f"metrics ok: exporter on 127.0.0.1:{port}, seen running at steps "
          f"{[int(get(x, 'moerun_steps_done')) for x in seen]}, final = summary "
          f"({summ['steps_completed']} steps, {summ['routed']} routed, {summ['dropped']} dropped), "
          f"rank 0 phases = telemetry")
finally:
    if run is not None and run.poll() is None:
        run.kill()
        run.wait()
    if exporter is not None:
        exporter.terminate()
        try:
            exporter.wait(timeout=10)
        except subprocess.TimeoutExpired:
            exporter.kill()
            exporter.wait()
