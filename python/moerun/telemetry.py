"""Read a moerun telemetry file (docs/telemetry.md) into pandas / xarray.

What always holds:
  1. Columns are found by the dataset's ``columns`` attribute, never by position, so files
     with more or fewer phase, traffic or router columns read the same way.
  2. Dimension names come from the file's HDF5 dimension labels where present, else from
     the documented defaults (DEFAULT_DIMS); units from a per-column units attribute where
     present, else from the documented units (UNITS). Every frame and array carries its units
     in ``.attrs["units"]`` ({column: unit} for column datasets, one string otherwise).
  3. Nothing is invented: a dataset the file lacks raises KeyError naming it (``has()`` asks
     first); values are returned as stored (int64 counts stay int64).
"""
import configparser
import json

import h5py
import numpy as np
import pandas as pd

try:  # optional
    import xarray as xr
except ImportError:  # pragma: no cover - depends on the machine
    xr = None

# Dimension names of each dataset when the file carries no dimension labels (schema 1);
# the same names as the labels schema 2 writes (include/moerun/telemetry_schema.h).
DEFAULT_DIMS = {
    "steps/step": ("step",),
    "steps/routed": ("step", "layer", "expert"),
    "steps/processed": ("step", "layer", "expert"),
    "steps/dropped": ("step", "layer", "expert"),
    "steps/dropped_capacity": ("step", "layer", "expert"),
    "steps/capacity": ("step", "layer"),
    "steps/router": ("step", "layer", "stat"),
    "steps/phase_time": ("step", "layer", "rank", "phase"),
    "steps/traffic": ("step", "layer", "rank", "counter"),
    "routes/step": ("route",),
    "routes/token": ("route",),
    "routes/expert": ("route", "layer", "slot"),
    "routes/weight": ("route", "layer", "slot"),
    "routes/kept": ("route", "layer", "slot"),
    "accumulated/coselect": ("layer", "expert", "expert_j"),
    "accumulated/traffic_matrix": ("rank", "peer"),
    "topology/hostname": ("rank",),
    "topology/node": ("rank",),
    "topology/local_rank": ("rank",),
    "topology/cpuset": ("rank",),
    "topology/numa_node": ("rank",),
    "placement/expert_owner": ("expert",),
    "events": ("event",),
}

# Documented units (docs/telemetry.md), used when the file has no per-column units.
UNITS = {
    "steps/routed": "pairs", "steps/processed": "pairs", "steps/dropped": "pairs",
    "steps/dropped_capacity": "pairs", "steps/capacity": "pairs", "steps/phase_time": "s",
    "accumulated/coselect": "tokens", "accumulated/traffic_matrix": "bytes",
}
COLUMN_UNITS = {
    "gate_entropy": "nat", "load_entropy": "nat", "gate_entropy_norm": "1",
    "load_entropy_norm": "1", "top1_prob": "1", "top1_top2_margin": "1", "logit_mean": "1",
    "logit_std": "1", "logit_max": "1", "aux_loss": "1", "z_loss": "1",
}

LOAD_DATASETS = ("routed", "processed", "dropped", "dropped_capacity")


def _text(v):
    """An attribute value as Python: bytes -> str, numpy scalars -> int/float, arrays -> list."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        return [_text(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    return v


class Telemetry:
    """An open telemetry file. Use as a context manager or call close()."""

    def __init__(self, path):
        self.path = str(path)
        self.file = h5py.File(self.path, "r")
        if "schema_version" not in self.file.attrs or "steps/routed" not in self.file:
            self.file.close()
            raise ValueError(f"{self.path}: not a moerun telemetry file "
                             "(no schema_version attribute or steps/routed)")

    # ---- lifetime -----------------------------------------------------------------------
    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        a = self.attrs
        return (f"<moerun.Telemetry {self.path!r}: {a.get('steps_completed')} steps, "
                f"{a.get('layers')} layers x {a.get('experts')} experts, {a.get('nranks')} ranks, "
                f"status {a.get('status')!r}>")

    # ---- metadata -----------------------------------------------------------------------
    @property
    def attrs(self):
        """Root attributes as a dict of Python values."""
        return {k: _text(v) for k, v in self.file.attrs.items()}

    @property
    def config(self):
        """The effective configuration (the ``config`` attribute, an INI text) as a dict of str."""
        text = self.attrs.get("config", "")
        cp = configparser.ConfigParser(interpolation=None)
        cp.read_string(text if "[" in text else "[moerun]\n" + text)
        return dict(cp["moerun"]) if cp.has_section("moerun") else {}

    @property
    def summary(self):
        """The run's summary JSON stored at close (``summary`` attribute), or None."""
        s = self.attrs.get("summary")
        return json.loads(s) if s else None

    @property
    def steps(self):
        """Step index of each per-step row (steps/step)."""
        return self.file["steps/step"][()]

    def has(self, name):
        """True if the dataset ``name`` (e.g. "steps/phase_time") exists."""
        return name in self.file

    def _ds(self, name):
        if name not in self.file:
            raise KeyError(f"{self.path}: no dataset {name}")
        return self.file[name]

    def columns(self, name):
        """Column names of a column dataset (its ``columns`` attribute)."""
        return [str(_text(c)) for c in self._ds(name).attrs["columns"]]

    def dims(self, name):
        """Dimension names: the file's dimension labels where set, else DEFAULT_DIMS."""
        ds = self._ds(name)
        default = DEFAULT_DIMS.get(name, tuple(f"dim_{i}" for i in range(ds.ndim)))
        out = []
        for i in range(ds.ndim):
            label = ds.dims[i].label if i < len(ds.dims) else ""
            out.append(label if label else (default[i] if i < len(default) else f"dim_{i}"))
        return tuple(out)

    def units(self, name):
        """Units: {column: unit} for a column dataset, else one string ("" if unknown)."""
        ds = self._ds(name)
        if "columns" not in ds.attrs:
            u = _text(ds.attrs.get("units", UNITS.get(name, "")))
            return u if isinstance(u, str) else ", ".join(map(str, u))
        cols = self.columns(name)
        n = len(cols)
        # a per-column list: the "units" attribute itself or another *unit* attribute
        for key in ["units"] + [k for k in ds.attrs if "unit" in k and k != "units"]:
            v = _text(ds.attrs[key])
            if isinstance(v, list) and len(v) == n:
                return dict(zip(cols, map(str, v)))
            if isinstance(v, str) and len(v.split(",")) == n and n > 1:
                return dict(zip(cols, (x.strip() for x in v.split(","))))
        v = _text(ds.attrs.get("units", ""))
        out = {}
        for c in cols:
            if c in COLUMN_UNITS:
                out[c] = COLUMN_UNITS[c]
            elif c.startswith("bytes"):
                out[c] = "bytes"
            elif c.startswith("msgs"):
                out[c] = "messages"
            elif isinstance(v, str) and v and "," not in v and v != "see columns":
                out[c] = v
            else:
                out[c] = UNITS.get(name, "")
        return out

    # ---- pandas -------------------------------------------------------------------------
    def _index(self, dims, shape):
        levels = []
        for d, n in zip(dims, shape):
            levels.append(self.steps if d == "step" and len(self.steps) == n else np.arange(n))
        return pd.MultiIndex.from_product(levels, names=list(dims))

    def _columns_frame(self, name):
        ds = self._ds(name)
        a = ds[()]
        dims = self.dims(name)
        cols = self.columns(name)
        df = pd.DataFrame(a.reshape(-1, a.shape[-1]), columns=cols,
                          index=self._index(dims[:-1], a.shape[:-1]))
        df.columns.name = dims[-1]
        df.attrs["units"] = self.units(name)
        df.attrs["dataset"] = name
        return df

    def load(self):
        """Per step x layer x expert: routed, processed, dropped, dropped_capacity (those
        present) and the layer's per-expert capacity (-1 = dropless)."""
        r = self._ds("steps/routed")
        dims = self.dims("steps/routed")
        index = self._index(dims, r.shape)
        data, units = {}, {}
        for k in LOAD_DATASETS:
            if self.has("steps/" + k):
                data[k] = self.file["steps/" + k][()].reshape(-1)
                units[k] = self.units("steps/" + k)
        if self.has("steps/capacity"):
            cap = self.file["steps/capacity"][()]
            data["capacity"] = np.repeat(cap.reshape(-1), r.shape[2])
            units["capacity"] = self.units("steps/capacity")
        df = pd.DataFrame(data, index=index)
        df.attrs["units"] = units
        return df

    def phases(self):
        """Per step x layer x rank: seconds per phase (steps/phase_time columns)."""
        return self._columns_frame("steps/phase_time")

    def traffic(self):
        """Per step x layer x rank: bytes and messages (steps/traffic columns)."""
        return self._columns_frame("steps/traffic")

    def router(self):
        """Per step x layer: router statistics (steps/router columns)."""
        return self._columns_frame("steps/router")

    def events(self):
        """Monitor events: step, layer, expert, kind (name), value, threshold, message."""
        if not self.has("events"):
            raise KeyError(f"{self.path}: no dataset events")
        ds = self.file["events"]
        a = ds[()]
        out = {}
        for f in a.dtype.names:
            col = a[f]
            if col.dtype.kind in "SO" or col.dtype.kind == "U":
                col = [_text(x) if not isinstance(x, str) else x for x in col.tolist()]
            out[f] = col
        kind = out.get("kind")
        if "kind_name" in out:                         # schema 2: the name is stored
            out["kind"] = out.pop("kind_name")
        elif kind is not None:
            enum = h5py.check_enum_dtype(ds.dtype.fields["kind"][0])
            if enum:                                   # HDF5 enum: value -> name
                names = {v: k for k, v in enum.items()}
                out["kind"] = [names.get(int(k), str(k)) for k in kind]
            elif np.asarray(kind).dtype.kind in "iu":  # int + kind_names attribute
                names = [str(x) for x in _text(ds.attrs.get("kind_names", []))]
                out["kind"] = [names[k] if 0 <= k < len(names) else str(k) for k in kind]
        df = pd.DataFrame(out)
        df.index.name = self.dims("events")[0]
        df.attrs["units"] = {"value": "see kind", "threshold": "see kind"}
        return df

    def topology(self):
        """Per rank: hostname, node, local_rank, cpuset, numa_node (those present)."""
        data = {}
        for k in ("hostname", "node", "local_rank", "cpuset", "numa_node"):
            if self.has("topology/" + k):
                v = self.file["topology/" + k][()]
                data[k] = [_text(x) for x in v.tolist()] if v.dtype.kind in "SO" else v
        df = pd.DataFrame(data)
        df.index.name = "rank"
        return df

    def placement(self):
        """Rank that holds each expert (placement/expert_owner) as a Series."""
        s = pd.Series(self._ds("placement/expert_owner")[()], name="rank")
        s.index.name = "expert"
        return s

    def traffic_matrix(self):
        """Payload bytes sent by each rank (rows) to each peer (columns) since step 0."""
        a = self._ds("accumulated/traffic_matrix")[()]
        d = self.dims("accumulated/traffic_matrix")
        df = pd.DataFrame(a)
        df.index.name, df.columns.name = d[0], d[1]
        df.attrs["units"] = self.units("accumulated/traffic_matrix")
        return df

    def routes(self):
        """Sampled token routes, long form: index (route, layer, slot); step, token, expert,
        weight, kept."""
        e = self._ds("routes/expert")[()]
        n, L, k = e.shape
        idx = pd.MultiIndex.from_product([np.arange(n), np.arange(L), np.arange(k)],
                                         names=list(self.dims("routes/expert")))
        df = pd.DataFrame({
            "step": np.repeat(self.file["routes/step"][()], L * k),
            "token": np.repeat(self.file["routes/token"][()], L * k),
            "expert": e.reshape(-1),
            "weight": self.file["routes/weight"][()].reshape(-1),
            "kept": self.file["routes/kept"][()].reshape(-1).astype(bool),
        }, index=idx)
        return df

    # ---- xarray -------------------------------------------------------------------------
    def dataarray(self, name):
        """Dataset ``name`` as an xarray.DataArray with named dimensions, coordinates (step
        numbers, column names) and units in attrs. Needs xarray."""
        if xr is None:
            raise ImportError("xarray is not installed (Debian: python3-xarray)")
        ds = self._ds(name)
        a = ds[()]
        dims = self.dims(name)
        coords = {}
        for i, d in enumerate(dims):
            if d == "step" and name != "steps/step" and len(self.steps) == a.shape[i]:
                coords[d] = self.steps
            elif i == a.ndim - 1 and "columns" in ds.attrs:
                coords[d] = self.columns(name)
            else:
                coords[d] = np.arange(a.shape[i])
        u = self.units(name)
        attrs = {"dataset": name}
        if isinstance(u, dict):
            attrs["units"] = u
            coords["units"] = (dims[-1], [u[c] for c in self.columns(name)])
        else:
            attrs["units"] = u
        desc = _text(ds.attrs.get("description", ""))
        if desc:
            attrs["description"] = desc
        return xr.DataArray(a, dims=dims, coords=coords, name=name.split("/")[-1], attrs=attrs)

    def to_xarray(self):
        """The per-step datasets (steps/*) as one xarray.Dataset."""
        if xr is None:
            raise ImportError("xarray is not installed (Debian: python3-xarray)")
        arrays, seen = {}, {}
        for k in self.file["steps"]:
            if k == "step":
                continue
            da = self.dataarray("steps/" + k)
            if "units" in da.coords:
                da = da.drop_vars("units")
            for d in da.dims:   # two datasets naming different axes alike: keep them apart
                c = list(da[d].values)
                if d in seen and seen[d] != c:
                    da = da.rename({d: f"{da.name}_{d}"})
                else:
                    seen[d] = c
            arrays[da.name] = da
        return xr.Dataset(arrays, attrs={k: v for k, v in self.attrs.items()
                                         if isinstance(v, (str, int, float))})


def open(path):  # noqa: A001 - the package's entry point, like h5py.File
    """Opens a telemetry file: ``with moerun.open("run.h5") as t: t.load()``."""
    return Telemetry(path)
