#!/usr/bin/env python3
"""check_python.py RUN.h5 RUN.json WORKDIR — the moerun Python package (python/, imported
through PYTHONPATH) on the real fixture run, against the file read directly with h5py and
against the run's summary JSON:

  - load(): every (step, layer, expert) value equals steps/routed, processed, dropped;
    routed = processed + dropped; capacity broadcast from steps/capacity; units "pairs";
  - phases(), traffic(), router(): values equal the datasets (columns by name), index
    names = the dataset's dimension names, per-column units; per-rank phase sums averaged
    over ranks = summary phase_seconds_mean; bytes_inter total = summary inter_node_bytes;
    mean load_entropy_norm = summary load_entropy_norm;
  - events(): kinds as names, equal to the summary's alerts, count = alerts_raised;
  - topology(), placement(), traffic_matrix(), routes() equal their datasets;
  - xarray (when importable): named dimensions, step/column coordinates, units, values;
  - a schema-1 file (tests/fuzz/corpus) gives the same dimension names and units as the
    schema-2 file next to it (labels and per-column units in the file);
  - summaries(): a folder with two runs' summaries and a non-summary JSON gives two rows,
    with the values of the files; an explicit non-summary file is an error;
  - pip (when available): `pip install --no-deps --no-build-isolation --target` of python/
    installs an importable package of the same version.
"""
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

import moerun

h5, sj, work = sys.argv[1:4]
os.makedirs(work, exist_ok=True)
summ = json.load(open(sj))
f = h5py.File(h5, "r")


def cols(name):
    return [c.decode() if isinstance(c, bytes) else str(c) for c in f[name].attrs["columns"]]


checks = 0
with moerun.open(h5) as t:
    S, L, E = f["steps/routed"].shape
    P = f["steps/phase_time"].shape[2]
    assert t.attrs["experts"] == E and t.attrs["nranks"] == P == summ["ranks"]
    assert t.summary["routed"] == summ["routed"] and t.config["exchange"] == summ["exchange"]
    assert list(t.steps) == list(f["steps/step"][()])

    ld = t.load()
    assert ld.index.names == list(t.dims("steps/routed")) and len(ld) == S * L * E
    for k in ("routed", "processed", "dropped", "dropped_capacity"):
        a = f["steps/" + k][()]
        assert np.array_equal(ld[k].to_numpy().reshape(S, L, E), a), k
        assert ld.attrs["units"][k] == "pairs"
        checks += 1
    assert (ld.routed == ld.processed + ld.dropped).all()
    assert np.array_equal(ld.capacity.to_numpy().reshape(S, L, E)[:, :, 0], f["steps/capacity"][()])
    assert int(ld.routed.sum()) == summ["routed"] and int(ld.dropped.sum()) == summ["dropped"]
    # one cell by label
    s1, l1, e1 = int(f["steps/step"][S - 1]), L - 1, E - 1
    assert ld.loc[(s1, l1, e1), "routed"] == f["steps/routed"][S - 1, L - 1, E - 1]

    for name, fn in (("steps/phase_time", t.phases), ("steps/traffic", t.traffic),
                     ("steps/router", t.router)):
        df = fn()
        a = f[name][()]
        assert list(df.columns) == cols(name), (name, list(df.columns))
        assert df.index.names == list(t.dims(name)[:-1]), (name, df.index.names)
        assert np.array_equal(df.to_numpy().reshape(a.shape), a), name
        assert set(df.attrs["units"]) == set(cols(name)) and all(df.attrs["units"].values())
        checks += 1
    ph = t.phases()
    assert set(ph.attrs["units"].values()) == {"s"}
    per_rank = ph.groupby(level="rank").sum()
    for c in cols("steps/phase_time"):
        want = summ["phase_seconds_mean"][c]
        assert abs(per_rank[c].mean() - want) <= 1e-9 * max(1e-9, want), (c, per_rank[c].mean(), want)
        checks += 1
    tr = t.traffic()
    for c in tr.columns:
        want_unit = "bytes" if c.startswith("bytes") else "rows" if c.startswith("rows") else "messages"
        assert tr.attrs["units"][c] == want_unit, (c, tr.attrs["units"][c], want_unit)
    assert int(tr.bytes_inter.sum()) == summ["inter_node_bytes"]
    assert int(tr.bytes_intra.sum()) == summ["intra_node_bytes"]
    assert int(tr.bytes_sent.sum()) == summ["bytes_sent"]
    rt = t.router()
    assert abs(rt.load_entropy_norm.mean() - summ["load_entropy_norm"]) < 1e-12
    assert abs(rt.aux_loss.mean() - summ["aux_loss"]) < 1e-12

    ev = t.events()
    assert len(ev) == summ["alerts_raised"] == f["events"].shape[0]
    assert list(ev.kind) == [a["kind"] for a in summ["alerts"]], (list(ev.kind), summ["alerts"])
    assert list(ev.message) == [a["message"] for a in summ["alerts"]]
    assert list(ev.step) == [a["step"] for a in summ["alerts"]]
    assert all(isinstance(k, str) for k in ev.kind)

    topo = t.topology()
    assert topo.node.nunique() == summ["nodes"] and list(topo.index) == list(range(P))
    assert list(topo.hostname) == [h.decode() for h in f["topology/hostname"][()]]
    assert np.array_equal(t.placement().to_numpy(), f["placement/expert_owner"][()])
    assert np.array_equal(t.traffic_matrix().to_numpy(), f["accumulated/traffic_matrix"][()])
    ro = t.routes()
    assert np.array_equal(ro.expert.to_numpy(), f["routes/expert"][()].reshape(-1))
    assert np.array_equal(ro.weight.to_numpy(), f["routes/weight"][()].reshape(-1))
    checks += 6

    try:
        import xarray  # noqa: F401
        have_xr = True
    except ImportError:
        have_xr = False
    if have_xr:
        da = t.dataarray("steps/phase_time")
        assert da.dims == t.dims("steps/phase_time"), da.dims
        assert list(da.coords[da.dims[-1]].values) == cols("steps/phase_time")
        assert list(da.coords[da.dims[0]].values) == list(f["steps/step"][()])
        assert np.array_equal(da.values, f["steps/phase_time"][()])
        assert da.attrs["units"]["total"] == "s"
        per_rank = da.sel({da.dims[-1]: "total"}).sum(dim=[da.dims[0], da.dims[1]])
        want = f["steps/phase_time"][()][..., cols("steps/phase_time").index("total")].sum(axis=(0, 1))
        assert np.allclose(per_rank.values, want, rtol=1e-12)
        ds = t.to_xarray()
        assert np.array_equal(ds["routed"].values, f["steps/routed"][()])
        assert ds["routed"].attrs["units"] == "pairs"
        checks += 2
    else:
        print("xarray not importable: DataArray checks skipped (jobs/install-deps.sh --test installs it)")

# a schema-1 file (no dimension labels, no per-column units) reads with the names and units
# schema 2 writes (the fuzz corpus holds one of each)
corpus = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus", "telemetry_reader")
v1, v2 = (moerun.open(os.path.join(corpus, n)) for n in ("small.h5", "small_v2.h5"))
assert v1.attrs["schema_version"] == 1 and v2.attrs["schema_version"] == 2
for name in moerun.DEFAULT_DIMS:
    if v1.has(name) and v2.has(name):
        assert v1.dims(name) == v2.dims(name), (name, v1.dims(name), v2.dims(name))
        if name.startswith("steps/"):
            assert v1.units(name) == v2.units(name), (name, v1.units(name), v2.units(name))
assert all(isinstance(k, str) and k for k in list(v1.events().kind) + list(v2.events().kind))
checks += 1

# summaries(): a folder of runs
coll = os.path.join(work, "collect")
shutil.rmtree(coll, ignore_errors=True)
for i in range(2):
    os.makedirs(os.path.join(coll, f"run{i}"))
    s = dict(summ, exchange=["flat", "hier"][i], routed=summ["routed"] + i)
    json.dump(s, open(os.path.join(coll, f"run{i}", "summary.json"), "w"))
json.dump({"not": "a summary"}, open(os.path.join(coll, "other.json"), "w"))
tab = moerun.summaries(coll)
assert len(tab) == 2, tab
assert list(tab.exchange) == ["flat", "hier"] and list(tab.routed) == [summ["routed"], summ["routed"] + 1]
assert tab["phase_seconds_mean.total"].iloc[0] == summ["phase_seconds_mean"]["total"]
assert tab["output_checksum.sum"].iloc[1] == summ["output_checksum"]["sum"]
assert "alerts" not in tab.columns and (tab.alerts_raised == summ["alerts_raised"]).all()
try:
    moerun.summaries(os.path.join(coll, "other.json"))
    raise AssertionError("a non-summary file given explicitly was accepted")
except ValueError:
    pass
checks += 1

# pip install of python/ (offline: no build isolation, no dependencies)
src = os.path.join(work, "python-src")   # a copy: setuptools builds in the source tree
shutil.rmtree(src, ignore_errors=True)
shutil.copytree(os.path.join(os.path.dirname(moerun.__file__), ".."), src,
                ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
r = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
if r.returncode == 0:
    target = os.path.join(work, "pip-target")
    shutil.rmtree(target, ignore_errors=True)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", target, src], capture_output=True, text=True,
                       env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-c", "import moerun; print(moerun.__file__, moerun.__version__)"],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=target), cwd=work)
    assert r.returncode == 0 and r.stdout.startswith(target) and moerun.__version__ in r.stdout, r
    checks += 1
else:
    print("pip not available: the pip install check is skipped")
print(f"python package ok: {checks} groups of values equal the file and the summary")
