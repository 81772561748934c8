#!/usr/bin/env python3
"""check_sweep.py SWEEP MOERUN ANALYZE WORKDIR — jobs/moerun-sweep on a 2x2 grid of tiny
2-rank runs (exchange=flat,hier x top_k=2,1), for real under mpirun:

  - 4 point folders, each with run.h5, summary.json, point.json; exit 0;
  - the table (sweep.csv and sweep.json): 4 rows in grid order, grid columns as given, and
    every summary key's value equal to that point's summary.json (CSV and JSON alike); the
    summary's own exchange / top_k equal the grid's;
  - resume: a second invocation reruns nothing (output says skipped x4, run.h5 and
    summary.json untouched); after one point's summary is removed, a third reruns only it;
  - --collect rewrites the same table; moerun.summaries(folder) (python/) gives the same rows;
  - moerun-analyze on the folder: 4 runs in grid order (not path order), "differences"
    lists exchange and top_k (values = the grid) and every listed number equals the
    summaries (tokens/s, inter-node bytes, drop rate) with delta = value - run 0's; the
    same table in HTML and Markdown;
  - a failing point (top_k=99 of 8 experts) gives exit 1, status "failed" in its row, and
    the good point's row complete;
  - usage errors exit 2 and create nothing: a grid word without '=', a key given twice, a
    folder holding another sweep; --slurm writes a job-array script for 4 tasks that bash
    parses.
"""
import csv
import json
import os
import shutil
import subprocess
import sys

sweep, moerun, analyze, work = sys.argv[1:5]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
out = os.path.join(work, "grid")
tiny = ["--", "--steps", "2", "--layers", "2", "--d-model", "16", "--d-ffn", "16", "--tokens", "64",
        "--ranks-per-node", "1", "--capacity-factor", "1.0", "--workload", "zipf:1.2",
        "--progress-interval", "0"]
env = dict(os.environ, MOERUN=moerun)


def sw(*args, check=None):
    r = subprocess.run([sys.executable, sweep, *args], capture_output=True, text=True, env=env)
    if check is not None:
        assert r.returncode == check, (args, r.returncode, r.stdout, r.stderr)
    return r


grid = ["exchange=flat,hier", "top_k=2,1"]   # grid order is not path order
sw(out, *grid, *tiny, check=0)
names = ["exchange-flat__top_k-2", "exchange-flat__top_k-1", "exchange-hier__top_k-2",
         "exchange-hier__top_k-1"]
want = [("flat", "2"), ("flat", "1"), ("hier", "2"), ("hier", "1")]
assert sorted(d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d))) == sorted(names)
summ = []
for n, (ex, k) in zip(names, want):
    for f in ("run.h5", "summary.json", "point.json"):
        assert os.path.exists(os.path.join(out, n, f)), (n, f)
    s = json.load(open(os.path.join(out, n, "summary.json")))
    assert s["exchange"] == ex and s["top_k"] == int(k) and s["status"] == "complete", (n, s["exchange"], s["top_k"])
    summ.append(s)


def flat(obj, prefix=""):
    o = {}
    for k, v in obj.items():
        if isinstance(v, dict):
            o.update(flat(v, prefix + k + "."))
        elif not isinstance(v, list):
            o[prefix + k] = v
    return o


def check_table():
    tj = json.load(open(os.path.join(out, "sweep.json")))
    rows = list(csv.DictReader(open(os.path.join(out, "sweep.csv"))))
    assert len(tj["rows"]) == len(rows) == 4
    assert tj["columns"][:4] == ["exchange", "top_k", "point", "status"], tj["columns"][:4]
    assert list(rows[0].keys()) == tj["columns"]
    for i, (n, (ex, k)) in enumerate(zip(names, want)):
        r, c = tj["rows"][i], rows[i]
        assert (r["exchange"], r["top_k"], r["point"]) == (ex, k, n) == (c["exchange"], c["top_k"], c["point"])
        fs = flat(json.load(open(os.path.join(out, n, "summary.json"))))
        for key, v in fs.items():
            if key in ("exchange", "top_k"):
                continue
            assert r[key] == v, (n, key, r[key], v)
            assert c[key] == str(v) or float(c[key]) == float(v), (n, key, c[key], v)
    return tj


tab = check_table()
stamps = {n: (os.stat(os.path.join(out, n, "run.h5")).st_mtime_ns,
              os.stat(os.path.join(out, n, "summary.json")).st_mtime_ns) for n in names}

# resume: nothing rerun
r = sw(out, *grid, *tiny, check=0)
assert r.stdout.count("finished, skipped") == 4 and "--summary-json" not in r.stdout, r.stdout
for n in names:
    assert (os.stat(os.path.join(out, n, "run.h5")).st_mtime_ns,
            os.stat(os.path.join(out, n, "summary.json")).st_mtime_ns) == stamps[n], n
# an unfinished point (summary gone) is rerun, alone
os.unlink(os.path.join(out, names[3], "summary.json"))
r = sw(out, *grid, *tiny, check=0)
assert r.stdout.count("finished, skipped") == 3 and r.stdout.count("--summary-json") == 1, r.stdout
for n in names[:3]:
    assert os.stat(os.path.join(out, n, "run.h5")).st_mtime_ns == stamps[n][0], n
assert os.stat(os.path.join(out, names[3], "run.h5")).st_mtime_ns != stamps[names[3]][0]
summ[3] = json.load(open(os.path.join(out, names[3], "summary.json")))
check_table()
os.unlink(os.path.join(out, "sweep.csv"))
sw("--collect", out, check=0)
check_table()

# the Python package's summaries() on the folder: the same table, grid columns from point.json
import moerun  # noqa: E402  (PYTHONPATH=python, set by the test)
pt = moerun.summaries(out)
assert len(pt) == 4 and list(pt.point) == names and list(pt.point_index) == [0, 1, 2, 3]
assert list(pt.exchange) == [w[0] for w in want] and list(pt.top_k) == [int(w[1]) for w in want]
assert list(pt.routed) == [s["routed"] for s in summ] and list(pt.tokens_per_s) == [s["tokens_per_s"] for s in summ]

# moerun-analyze on the folder: what differs, with deltas against run 0
r = subprocess.run([analyze, out, "--json", "-"], capture_output=True, text=True)
assert r.returncode == 0, r.stderr
rep = json.loads(r.stdout)
assert [os.path.basename(os.path.dirname(x["file"])) for x in rep["runs"]] == names
diff = {c["column"]: c for c in rep["differences"]["columns"]}
assert diff["exchange"]["values"] == [w[0] for w in want], diff["exchange"]
assert diff["top_k"]["values"] == [int(w[1]) for w in want] and diff["top_k"]["delta"] == [0, -1, 0, -1]
assert diff["top_k"]["delta_pct"] == [0, -50, 0, -50], diff["top_k"]
assert "experts" not in diff and "layers" not in diff, list(diff)
for col, key in (("tokens_per_s", "tokens_per_s"), ("inter_node_bytes", "inter_node_bytes"),
                 ("drop_rate", "drop_rate"), ("routed", "routed")):
    if col in diff:
        vals = diff[col]["values"]
        assert all(abs(v - s[key]) <= 1e-9 * max(1, abs(s[key])) for v, s in zip(vals, summ)), (col, vals)
        assert all(abs(d - (v - vals[0])) <= 1e-9 * max(1, abs(v)) for d, v in zip(diff[col]["delta"], vals))
assert "tokens_per_s" in diff and "routed" in diff, list(diff)
html, md = os.path.join(work, "cmp.html"), os.path.join(work, "cmp.md")
txt = subprocess.run([analyze, out, "--html", html, "--markdown", md], capture_output=True, text=True).stdout
assert "# differences against run 0" in txt and "exchange" in txt, txt[-2000:]
h = open(html).read()
assert h.count('<table id="differences">') == 1 and h.index('id="differences"') < h.index("</body>")
assert h.split('id="differences"')[1].split("</table>")[0].count("<tr>") == len(diff) + 1
assert "## Differences against run 0" in open(md).read()

# a failing point
bad = os.path.join(work, "bad")
r = sw(bad, "top_k=2,99", *tiny, check=1)
tb = json.load(open(os.path.join(bad, "sweep.json")))
assert [x["status"] for x in tb["rows"]] == ["complete", "failed"], tb["rows"]
assert "top_k-99" in r.stderr and "moerun.log" in r.stderr, r.stderr

# usage errors create nothing
for args in (["nokey"], ["top_k=1", "top_k=2"], ["top_k=1,"]):
    d = os.path.join(work, "usage")
    r = sw(d, *args, check=2)
    assert not os.path.exists(d) and r.stderr.startswith("moerun-sweep:"), (args, r.stderr)
r = sw(out, "exchange=flat", *tiny, check=2)
assert "another sweep" in r.stderr, r.stderr
# Slurm job array
sl = os.path.join(work, "slurm")
sw(sl, *grid, "--slurm", "--sbatch=--time=00:05:00", *tiny, check=0)
script = open(os.path.join(sl, "sweep.sbatch")).read()
assert "#SBATCH --array=0-3" in script and "#SBATCH --ntasks=2" in script and "--time=00:05:00" in script
assert "--point \"$SLURM_ARRAY_TASK_ID\"" in script
assert subprocess.run(["bash", "-n", os.path.join(sl, "sweep.sbatch")]).returncode == 0
assert json.load(open(os.path.join(sl, "grid.json")))["launcher"][0] == "srun"
print(f"sweep ok: 4 points, table = summaries, resume reran 0 then 1 point, analyze differences "
      f"{sorted(diff)}, failure and usage errors clean, Slurm array script")
