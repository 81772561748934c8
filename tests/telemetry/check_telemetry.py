#!/usr/bin/python3
"""check_telemetry.py - an independent h5py check of a moerun telemetry file (docs/telemetry.md).

Usage: check_telemetry.py FILE [--summary SUMMARY.json] [--same-as OTHER.h5]

Checks (exit 1 with one message per failed check):
  - schema: every documented group, dataset and root attribute exists, with the documented
    dtype kind and a shape consistent with the root attributes (layers, experts, top_k, nranks);
  - counts: routed == processed + dropped everywhere; dropped == dropped_capacity (the only
    drop reason today); processed <= capacity where capacity >= 0; all counts >= 0;
  - steps: steps/step is 0..n-1 (contiguous); n == steps_completed when status is "complete",
    n <= steps_completed otherwise (a run killed mid-block);
  - traffic: the traffic matrix holds payload bytes including the diagonal (self), while
    steps/traffic bytes_sent counts payload and count messages excluding self. So for every
    rank r: sum_{c != r} matrix[r][c] <= sum over steps and layers of bytes_sent[r], and
    every entry is >= 0; bytes_intra + bytes_inter == bytes_sent and msgs_intra + msgs_inter
    == msgs_sent in every row; payload the matrix sends to ranks on other nodes (topology/node)
    <= the rank's bytes_inter total; with one node, bytes_inter is 0 (the two matrix
    relations are skipped for a file whose writer was killed, status "running": the in-place
    matrices may then be one block ahead of the per-step rows);
  - phases: gate + counts + dispatch + expert + combine == total (1e-9 s), and the inter-node
    stage columns are within their phase (dispatch_inter <= dispatch, combine_inter <= combine),
    and so are the wait columns (counts_wait <= counts, combine_wait <= combine);
  - routes: experts in 0..E-1, kept in {0, 1}, step values are steps in the file;
  - self-description (schema_version 2): every dataset has the documented dimension labels
    (h5py: dset.dims[i].label), a description, and units: a string, or on steps/router,
    steps/phase_time and steps/traffic a list with one unit per column (s for phases, bytes
    or messages for traffic counters, nat or 1 for router statistics);
  - events: kind within kind_names; (schema 2) kind_name equals the name of kind, and the
    kind member is an enum whose names match kind_names;
  - --summary: the JSON keys routed, processed, dropped, steps_completed equal the file's totals,
    and inter_node_bytes / intra_node_bytes equal the sums of bytes_inter / bytes_intra;
  - --same-as: the other file holds the same data (for comparing the two writer modes).
Imported files (root attribute source = "import:...", docs/import.md) are recognised by
that attribute: only steps/step and steps/routed and the root attributes the import knows
are required; every other dataset is checked if present, with the same relations. Extra
import checks: coselect's diagonal sums to the routed pairs of its layer; routes hold
distinct experts per (token, layer); import/step_value is strictly increasing, one per step;
the import/labels tables are consistent with steps/routed; (schema 2) the import/ datasets
carry dimension labels.
Exit 2 for usage errors or an unreadable file.
"""
import json
import sys

try:
    import h5py
    import numpy as np
except ImportError as exc:  # the python3 first on PATH may lack them: use /usr/bin/python3
    print(f"check_telemetry: {exc} (run with /usr/bin/python3)", file=sys.stderr)
    sys.exit(2)

ROOT_INT = ["schema_version", "experts", "top_k", "layers", "d_model", "d_ffn",
            "tokens_per_rank", "nranks", "nnodes", "flush_interval", "route_samples",
            "steps_requested", "seed", "steps_completed"]
ROOT_FLOAT = ["capacity_factor", "temperature"]
ROOT_STR = ["moerun_version", "mpi_version", "hdf5_version", "hwloc_version", "config",
            "start_time", "slurm_job_id", "drop_policy", "workload", "exchange", "placement",
            "activation", "telemetry_mode", "status"]
PHASES = ["gate", "counts", "dispatch", "expert", "combine", "total", "dispatch_inter",
          "combine_inter", "counts_wait", "combine_wait"]
TRAFFIC = ["bytes_sent", "bytes_recv", "msgs_sent", "msgs_recv", "bytes_intra", "bytes_inter",
           "msgs_intra", "msgs_inter", "rows_in"]
RSTAT_COUNT = 11
SCHEMA_VERSIONS = (1, 2)  # 1: before dimension labels, per-column units and kind_name
# Dimension labels and units of schema 2, written down here independently of the C header.
LABELS = {
    "steps/step": ("step",), "steps/routed": ("step", "layer", "expert"),
    "steps/processed": ("step", "layer", "expert"), "steps/dropped": ("step", "layer", "expert"),
    "steps/dropped_capacity": ("step", "layer", "expert"), "steps/capacity": ("step", "layer"),
    "steps/router": ("step", "layer", "stat"), "steps/phase_time": ("step", "layer", "rank", "phase"),
    "steps/traffic": ("step", "layer", "rank", "counter"), "routes/step": ("route",),
    "routes/token": ("route",), "routes/expert": ("route", "layer", "slot"),
    "routes/weight": ("route", "layer", "slot"), "routes/kept": ("route", "layer", "slot"),
    "events": ("event",), "accumulated/coselect": ("layer", "expert", "expert_j"),
    "accumulated/traffic_matrix": ("rank", "peer"), "topology/hostname": ("rank",),
    "topology/node": ("rank",), "topology/local_rank": ("rank",), "topology/cpuset": ("rank",),
    "topology/numa_node": ("rank",), "placement/expert_owner": ("expert",),
}
UNITS = {
    "steps/step": "step", "steps/routed": "pairs", "steps/processed": "pairs",
    "steps/dropped": "pairs", "steps/dropped_capacity": "pairs", "steps/capacity": "pairs",
    "routes/step": "step", "routes/token": "token", "routes/expert": "expert", "routes/weight": "1",
    "routes/kept": "bool", "accumulated/coselect": "tokens", "accumulated/traffic_matrix": "bytes",
    "topology/node": "node", "topology/local_rank": "rank", "topology/numa_node": "NUMA node",
    "placement/expert_owner": "rank",
}


def column_unit(path, name):
    if path == "steps/phase_time":
        return "s"
    if path == "steps/traffic":
        return "bytes" if name.startswith("bytes") else "rows" if name == "rows_in" else "messages"
    return "nat" if name in ("gate_entropy", "load_entropy") else "1"
IMPORT_INT = ["schema_version", "experts", "layers", "steps_completed"]
IMPORT_STR = ["moerun_version", "hdf5_version", "source", "start_time", "status"]
IMPORT_REQUIRED = {"steps/step", "steps/routed"}


def imported(f):
    return "source" in f.attrs and as_str(f.attrs["source"]).startswith("import:")


class Checker:
    def __init__(self, path):
        self.path = path
        self.errors = []

    def fail(self, msg):
        self.errors.append(msg)

    def expect(self, cond, msg):
        if not cond:
            self.fail(msg)
        return cond


def as_str(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        return as_str(v[()])
    return str(v)


def schema(c, f):
    """Returns the dict of expected shapes (without the first dim for appended datasets)."""
    a = f.attrs
    imp = imported(f)
    for k in (IMPORT_INT if imp else ROOT_INT):
        if c.expect(k in a, f"root attribute {k} missing"):
            c.expect(np.issubdtype(np.asarray(a[k]).dtype, np.integer), f"root attribute {k} is not an integer")
    for k in ([] if imp else ROOT_FLOAT):
        if c.expect(k in a, f"root attribute {k} missing"):
            c.expect(np.issubdtype(np.asarray(a[k]).dtype, np.floating), f"root attribute {k} is not a float")
    for k in (IMPORT_STR if imp else ROOT_STR):
        c.expect(k in a, f"root attribute {k} missing")
    if c.errors:
        return None
    c.expect(int(a["schema_version"]) in SCHEMA_VERSIONS,
             f"schema_version {a['schema_version']} not in {SCHEMA_VERSIONS}")
    # absent in an imported file: -1, and the datasets sized by it must be absent too
    L, E, k, P = (int(a[x]) if x in a else -1 for x in ("layers", "experts", "top_k", "nranks"))
    c.expect(as_str(a["status"]) in ("running", "complete", "interrupted", "error"),
             f"status {as_str(a['status'])!r} unknown")
    if as_str(a["status"]) != "running":
        c.expect("end_time" in a, "closed file without end_time")
    # path: (dtype kind, shape after dim 0 or full shape, appended?)
    want = {
        "steps/step": ("i", (), True),
        "steps/routed": ("i", (L, E), True),
        "steps/processed": ("i", (L, E), True),
        "steps/dropped": ("i", (L, E), True),
        "steps/dropped_capacity": ("i", (L, E), True),
        "steps/capacity": ("i", (L,), True),
        "steps/router": ("f", (L, RSTAT_COUNT), True),
        "steps/phase_time": ("f", (L, P, len(PHASES)), True),
        "steps/traffic": ("i", (L, P, len(TRAFFIC)), True),
        "routes/step": ("i", (), True),
        "routes/token": ("i", (), True),
        "routes/expert": ("i", (L, k), True),
        "routes/weight": ("f", (L, k), True),
        "routes/kept": ("u", (L, k), True),
        "events": ("V", (), True),
        "accumulated/coselect": ("i", (L, E, E), False),
        "accumulated/traffic_matrix": ("i", (P, P), False),
        "topology/hostname": ("S", (P,), False),
        "topology/node": ("i", (P,), False),
        "topology/local_rank": ("i", (P,), False),
        "topology/cpuset": ("S", (P,), False),
        "topology/numa_node": ("i", (P,), False),
        "placement/expert_owner": ("i", (E,), False),
    }
    for path, (kind, shape, appended) in want.items():
        if imp and path not in IMPORT_REQUIRED and path not in f:
            continue  # the log had no such data
        if not c.expect(path in f and isinstance(f[path], h5py.Dataset), f"dataset {path} missing"):
            continue
        d = f[path]
        c.expect(d.dtype.kind == kind, f"{path}: dtype {d.dtype} is not of kind {kind!r}")
        got = d.shape[1:] if appended else d.shape
        c.expect(got == shape, f"{path}: shape {d.shape}, want {'(n,) + ' if appended else ''}{shape}")
        if appended:
            c.expect(d.maxshape[0] is None, f"{path}: first dimension is not unlimited")
    for path, names in (("steps/phase_time", PHASES), ("steps/traffic", TRAFFIC)):
        if path in f:
            cols = [as_str(x) for x in f[path].attrs.get("columns", [])]
            c.expect(cols == names, f"{path}: columns {cols} != {names}")
    if "steps/router" in f:
        c.expect(len(f["steps/router"].attrs.get("columns", [])) == RSTAT_COUNT,
                 "steps/router: columns attribute missing or wrong length")
    v2 = int(a["schema_version"]) >= 2
    if "steps/phase_time" in f and not v2:
        c.expect(as_str(f["steps/phase_time"].attrs.get("units", "")) == "s",
                 "steps/phase_time: units is not 's'")
    if v2:
        self_description(c, f, want)
    if "events" in f:
        c.expect("kind_names" in f["events"].attrs, "events: kind_names attribute missing")
        names = f["events"].dtype.names or ()
        for m in ("step", "layer", "expert", "kind", "value", "threshold", "message") + \
                (("kind_name",) if v2 else ()):
            c.expect(m in names, f"events: member {m} missing")
        enum = h5py.check_enum_dtype(f["events"].dtype["kind"]) if "kind" in names else None
        if c.expect(enum is not None, "events: kind is not an HDF5 enum"):
            kn = [as_str(x) for x in f["events"].attrs.get("kind_names", [])]
            c.expect(sorted(enum.items(), key=lambda x: x[1]) == [(n, i) for i, n in enumerate(kn)],
                     f"events: the kind enum {enum} does not match kind_names {kn}")
    for g in ("steps", "routes"):
        rows = {f[p].shape[0] for p in want if p.startswith(g + "/") and p in f}
        c.expect(len(rows) <= 1, f"{g}/*: datasets disagree on their row count {sorted(rows)}")
    return dict(L=L, E=E, k=k, P=P, imported=imp)


def self_description(c, f, want):
    """Schema 2: dimension labels, description and units (one per column) on every dataset."""
    for path in want:
        if path not in f:
            continue
        d = f[path]
        labels = tuple(dim.label for dim in d.dims)
        c.expect(labels == LABELS[path], f"{path}: dimension labels {labels} != {LABELS[path]}")
        c.expect(as_str(d.attrs.get("description", "")) != "", f"{path}: no description")
        if "columns" in d.attrs:
            cols = [as_str(x) for x in d.attrs["columns"]]
            units = d.attrs.get("units")
            units = [as_str(x) for x in units] if units is not None and np.ndim(units) == 1 else None
            wantu = [column_unit(path, x) for x in cols]
            c.expect(units == wantu, f"{path}: units {units} != one per column {wantu}")
        elif path in UNITS:
            c.expect(as_str(d.attrs.get("units", "")) == UNITS[path],
                     f"{path}: units {as_str(d.attrs.get('units', ''))!r} != {UNITS[path]!r}")


def have(f, *paths):
    return all(p in f for p in paths)


def contents(c, f, dims, summary):
    a = f.attrs
    L, E, P = dims["L"], dims["E"], dims["P"]
    steps = f["steps/step"][()]
    n = len(steps)
    done = int(a["steps_completed"])
    status = as_str(a["status"])
    c.expect(np.array_equal(steps, np.arange(n)), f"steps/step is not 0..{n - 1}: {steps[:10]}...")
    if status == "complete":
        c.expect(n == done, f"status complete but {n} steps in the file, steps_completed {done}")
    else:
        c.expect(n <= done, f"{n} steps in the file > steps_completed {done}")
    tot = {"routed": 0, "processed": 0, "dropped": 0, "bytes_intra": 0}
    bytes_sent = np.zeros(max(P, 0), dtype=np.int64)
    bytes_inter = np.zeros(max(P, 0), dtype=np.int64)
    chunk = 256  # rows at a time: memory bounded by a chunk, not by the run
    has_pd = have(f, "steps/processed", "steps/dropped", "steps/dropped_capacity", "steps/capacity")
    c.expect(has_pd or not any(x in f for x in ("steps/processed", "steps/dropped",
                                                   "steps/dropped_capacity", "steps/capacity")),
             "steps/processed, dropped, dropped_capacity, capacity: some present, some absent")
    routed_le = np.zeros((L, E), dtype=np.int64)
    for s0 in range(0, n, chunk):
        sl = slice(s0, min(n, s0 + chunk))
        r = f["steps/routed"][sl]
        c.expect((r >= 0).all(), "steps/routed has negative values")
        tot["routed"] += int(r.sum())
        routed_le += r.sum(axis=0)
        if not has_pd:
            continue
        p = f["steps/processed"][sl]
        d = f["steps/dropped"][sl]
        dc = f["steps/dropped_capacity"][sl]
        cap = f["steps/capacity"][sl]
        for name, x in (("processed", p), ("dropped", d)):
            c.expect((x >= 0).all(), f"steps/{name} has negative values")
            tot[name] += int(x.sum())
        bad = np.argwhere(r != p + d)
        if len(bad):
            s, l, e = bad[0]
            c.fail(f"routed != processed + dropped at step {s0 + s} layer {l} expert {e}: "
                   f"{r[s, l, e]} != {p[s, l, e]} + {d[s, l, e]} ({len(bad)} places)")
        bad = np.argwhere(d != dc)
        if len(bad):
            s, l, e = bad[0]
            c.fail(f"dropped != dropped_capacity at step {s0 + s} layer {l} expert {e}: "
                   f"{d[s, l, e]} != {dc[s, l, e]} ({len(bad)} places)")
        capb = np.broadcast_to(cap[:, :, None], p.shape)
        bad = np.argwhere((capb >= 0) & (p > capb))
        if len(bad):
            s, l, e = bad[0]
            c.fail(f"processed > capacity at step {s0 + s} layer {l} expert {e}: "
                   f"{p[s, l, e]} > {capb[s, l, e]}")
        if "steps/traffic" in f:
            t = f["steps/traffic"][sl]
            c.expect((t >= 0).all(), "steps/traffic has negative values")
            ti = {name: t[:, :, :, TRAFFIC.index(name)] for name in TRAFFIC}
            bytes_sent += ti["bytes_sent"].sum(axis=(0, 1))
            bytes_inter += ti["bytes_inter"].sum(axis=(0, 1))
            tot["bytes_intra"] += int(ti["bytes_intra"].sum())
            # rows_in: every processed pair was computed by exactly one rank (replicas included)
            bad = np.argwhere(ti["rows_in"].sum(axis=2) != p.sum(axis=2))
            if len(bad):
                s, l = bad[0]
                c.fail(f"steps/traffic rows_in summed over ranks != processed summed over experts "
                       f"at step {s0 + s} layer {l}: {ti['rows_in'][s, l].sum()} != {p[s, l].sum()}")
            for what in ("bytes", "msgs"):
                bad = np.argwhere(ti[what + "_intra"] + ti[what + "_inter"] != ti[what + "_sent"])
                if len(bad):
                    s, l, rk = bad[0]
                    c.fail(f"steps/traffic: {what}_intra + {what}_inter != {what}_sent at step "
                           f"{s0 + s} layer {l} rank {rk} ({len(bad)} places)")
        if "steps/phase_time" in f:
            ph = f["steps/phase_time"][sl]
            c.expect(np.isfinite(ph).all() and (ph >= 0).all(), "steps/phase_time has negative or non-finite values")
            pi = {name: ph[:, :, :, PHASES.index(name)] for name in PHASES}
            parts = sum(pi[x] for x in ("gate", "counts", "dispatch", "expert", "combine"))
            c.expect(np.allclose(parts, pi["total"], rtol=0, atol=1e-9),
                     "steps/phase_time: gate + counts + dispatch + expert + combine != total")
            for stage, phase in (("dispatch_inter", "dispatch"), ("combine_inter", "combine"),
                                 ("counts_wait", "counts"), ("combine_wait", "combine")):
                c.expect((pi[stage] <= pi[phase] + 1e-9).all(),
                         f"steps/phase_time: {stage} exceeds {phase}")
    m = None
    if "accumulated/traffic_matrix" in f:
        m = f["accumulated/traffic_matrix"][()]
        c.expect((m >= 0).all(), "traffic_matrix has negative entries")
        off = m.sum(axis=1) - np.diag(m)
        # a writer killed mid-block (status still "running") may have rewritten the
        # accumulated matrices in place for a block whose per-step rows never got flushed:
        # then the matrix may be ahead of steps/traffic by that one block
        for rk in range(P if status != "running" else 0):
            c.expect(off[rk] <= bytes_sent[rk],
                     f"traffic_matrix row {rk} sends {off[rk]} bytes to other ranks, more than "
                     f"its bytes_sent total {bytes_sent[rk]}")
    if "accumulated/coselect" in f:
        cs = f["accumulated/coselect"][()]
        c.expect((cs >= 0).all(), "coselect has negative entries")
        c.expect(all(np.array_equal(cs[l], cs[l].T) for l in range(L)), "coselect is not symmetric")
        if dims["imported"]:
            diag = np.array([np.diag(cs[l]) for l in range(L)])
            c.expect(np.array_equal(diag, routed_le),
                     "import: coselect diagonal != routed pairs summed over steps")
    if "placement/expert_owner" in f:
        owner = f["placement/expert_owner"][()]
        c.expect(((owner >= 0) & (owner < P)).all(), "expert_owner outside 0..nranks-1")
    if "placement/expert_ranks" in f:
        er = f["placement/expert_ranks"][()]
        c.expect(er.ndim == 3 and er.shape[:2] == (L, E),
                 f"placement/expert_ranks shape {er.shape}, want ({L}, {E}, R)")
        if er.ndim == 3 and er.shape[:2] == (L, E):
            for l in range(L):
                for e in range(E):
                    reps = [int(x) for x in er[l, e] if x >= 0]
                    c.expect(len(reps) >= 1 and all(0 <= x < P for x in reps) and
                             len(set(reps)) == len(reps) and (er[l, e, len(reps):] == -1).all(),
                             f"placement/expert_ranks layer {l} expert {e}: {list(er[l, e])} is not "
                             f"a list of distinct ranks 0..{P - 1} padded with -1")
            if "placement/expert_owner" in f:
                c.expect(np.array_equal(er[0, :, 0], f["placement/expert_owner"][()]),
                         "placement/expert_owner != expert_ranks[0, :, 0] (layer 0 primaries)")
    if "topology/node" in f:
        node = f["topology/node"][()]
        c.expect(((node >= 0) & (node < int(a["nnodes"]))).all(), "topology/node outside 0..nnodes-1")
        if m is not None and "steps/traffic" in f and status != "running":
            remote = node[:, None] != node[None, :]
            for rk in range(P):
                to_remote = int(m[rk][remote[rk]].sum())
                c.expect(to_remote <= bytes_inter[rk],
                         f"traffic_matrix row {rk} sends {to_remote} payload bytes to other nodes, more "
                         f"than its bytes_inter total {bytes_inter[rk]}")
    if "steps/traffic" in f:
        if int(a["nnodes"]) == 1:
            c.expect(int(bytes_inter.sum()) == 0, "one node, but steps/traffic bytes_inter is not 0")
        tot["bytes_inter"] = int(bytes_inter.sum())
    nr = f["routes/step"].shape[0] if "routes/step" in f else 0
    for r0 in range(0, nr, 4096):
        sl = slice(r0, min(nr, r0 + 4096))
        if "routes/expert" in f:
            ex = f["routes/expert"][sl]
            # -1: no token in the slot (a replay's last step past the end of its log,
            # docs/replay.md): a whole (token, layer) row of -1, weight 0, never kept
            empty = (ex == -1).all(axis=2)
            c.expect(((ex >= 0) & (ex < E) | empty[:, :, None]).all(), "routes/expert outside 0..experts-1")
            if empty.any() and "routes/kept" in f:
                c.expect((f["routes/kept"][sl][empty] == 0).all(), "routes/kept set for an empty slot")
            if dims["imported"]:
                srt = np.sort(ex, axis=2)
                c.expect(not (srt[:, :, 1:] == srt[:, :, :-1]).any(),
                         "import: routes/expert repeats an expert within a token and layer")
        if "routes/kept" in f:
            c.expect(np.isin(f["routes/kept"][sl], (0, 1)).all(), "routes/kept not 0/1")
        rs = f["routes/step"][sl]
        c.expect(((rs >= 0) & (rs < max(n, done))).all(), "routes/step outside the steps")
    if dims["imported"]:
        import_checks(c, f, n, nr, routed_le)
    ev = f["events"][()] if "events" in f else []
    if len(ev):
        nk = len(f["events"].attrs["kind_names"])
        kinds = ev["kind"].astype(np.int64)
        c.expect(((kinds >= 0) & (kinds < nk)).all(), "events: kind outside kind_names")
        if "kind_name" in (ev.dtype.names or ()):
            kn = [as_str(x) for x in f["events"].attrs["kind_names"]]
            got = [as_str(x) for x in ev["kind_name"]]
            c.expect(got == [kn[k] if 0 <= k < nk else "?" for k in kinds],
                     f"events: kind_name {got} does not name kind {list(kinds)}")
    if summary is not None:
        want = {"routed": tot["routed"], "processed": tot["processed"], "dropped": tot["dropped"],
                "steps_completed": done}
        for key, val in want.items():
            if c.expect(key in summary, f"summary: key {key} missing"):
                c.expect(int(summary[key]) == val, f"summary {key} = {summary[key]}, file has {val}")
        if n == done:  # a run killed mid-block has counted bytes the file does not hold
            for key, val in (("inter_node_bytes", tot["bytes_inter"]),
                             ("intra_node_bytes", tot["bytes_intra"])):
                if c.expect(key in summary, f"summary: key {key} missing"):
                    c.expect(int(summary[key]) == val,
                             f"summary {key} = {summary[key]}, file's steps/traffic sums to {val}")
    return tot


def import_checks(c, f, n, nr, routed_le):
    """The import/ group of an imported file (docs/import.md)."""
    if not c.expect("import/step_value" in f, "import: import/step_value missing"):
        return
    sv = f["import/step_value"][()]
    c.expect(len(sv) == n, f"import: {len(sv)} step values for {n} steps")
    if int(f.attrs["schema_version"]) >= 2:  # the import/ datasets are labelled too
        labels = {"values": ("value",), "rows": ("value",), "routed": ("value", "layer", "expert"),
                  "route_value": ("route",)}
        got = tuple(d.label for d in f["import/step_value"].dims)
        c.expect(got == ("step",), f"import/step_value: dimension labels {got}")
        for name, g in (f["import/labels"].items() if "import/labels" in f else []):
            for ds, want in labels.items():
                if ds in g:
                    got = tuple(d.label for d in g[ds].dims)
                    c.expect(got == want, f"import/labels/{name}/{ds}: dimension labels {got} != {want}")
    c.expect(len(sv) < 2 or (np.diff(sv) > 0).all(), "import: step_value not strictly increasing")
    if "import/labels" not in f:
        return
    for name, g in f["import/labels"].items():
        vals = g["values"][()]
        rows = g["rows"][()]
        V = len(vals)
        c.expect(len(rows) == V and (rows > 0).all(), f"import: labels/{name}: rows bad")
        c.expect(len(set(vals.tolist())) == V, f"import: labels/{name}: values not distinct")
        if "routed" in g:
            lr = g["routed"][()]
            c.expect(lr.shape == (V,) + routed_le.shape, f"import: labels/{name}/routed shape {lr.shape}")
            if lr.shape == (V,) + routed_le.shape:
                c.expect((lr >= 0).all() and (lr.sum(axis=0) <= routed_le).all(),
                         f"import: labels/{name}/routed exceeds steps/routed")
        if "route_value" in g:
            rv = g["route_value"][()]
            c.expect(len(rv) == nr and ((rv >= -1) & (rv < V)).all(),
                     f"import: labels/{name}/route_value bad (length {len(rv)}, routes {nr})")


def same_as(c, f, g):
    """Every dataset and every root attribute but times, mode and versions agree."""
    skip_attrs = {"start_time", "end_time", "telemetry_mode", "summary", "mpi_version"}
    for k in f.attrs:
        if k in skip_attrs:
            continue
        if not c.expect(k in g.attrs, f"--same-as: root attribute {k} missing in the other file"):
            continue
        x, y = f.attrs[k], g.attrs[k]
        c.expect(as_str(x) == as_str(y), f"--same-as: root attribute {k}: {as_str(x)!r} != {as_str(y)!r}")

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            if not c.expect(name in g, f"--same-as: {name} missing in the other file"):
                return
            x, y = obj[()], g[name][()]
            c.expect(x.shape == y.shape and np.array_equal(x, y), f"--same-as: {name} differs")
    f.visititems(visit)


def main(argv):
    args = argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    path, summary_path, other = args[0], None, None
    i = 1
    while i < len(args):
        if args[i] == "--summary" and i + 1 < len(args):
            summary_path = args[i + 1]
            i += 2
        elif args[i] == "--same-as" and i + 1 < len(args):
            other = args[i + 1]
            i += 2
        else:
            print(f"check_telemetry: unknown argument {args[i]!r}", file=sys.stderr)
            return 2
    summary = None
    if summary_path:
        try:
            with open(summary_path) as fh:
                summary = json.load(fh)
        except (OSError, ValueError) as exc:
            print(f"check_telemetry: cannot read summary {summary_path}: {exc}", file=sys.stderr)
            return 2
    c = Checker(path)
    try:
        with h5py.File(path, "r") as f:
            dims = schema(c, f)
            if dims is not None and not c.errors:
                tot = contents(c, f, dims, summary)
            if other:
                with h5py.File(other, "r") as g:
                    same_as(c, f, g)
    except OSError as exc:
        print(f"check_telemetry: {path}: cannot open: {exc}", file=sys.stderr)
        return 2
    if c.errors:
        for e in c.errors:
            print(f"check_telemetry: {path}: {e}", file=sys.stderr)
        print(f"check_telemetry: {path}: FAILED ({len(c.errors)} problems)", file=sys.stderr)
        return 1
    print(f"check_telemetry: {path}: ok ({tot['routed']} routed, {tot['processed']} processed, "
          f"{tot['dropped']} dropped)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
