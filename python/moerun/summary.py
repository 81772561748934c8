"""Collect moerun run summaries (docs/summary.md) into one pandas table.

One row per summary JSON; nested objects are flattened with dots ("phase_seconds_mean.gate",
"output_checksum.sum"); lists (the alert details) are left out, their count stays
("alerts_raised"). A directory is searched recursively for summary files: JSON objects with
"moerun_version" and "steps_completed". A sweep point's "point.json" (jobs/moerun-sweep)
beside a summary adds its grid values as columns (the point's own keys; values that read as
numbers become numbers; a key the summary also has takes the summary's value), "point" (the
folder name) and "point_index"; a folder whose summaries all have one is listed in grid order.
"""
import json
import os

import pandas as pd


def _flatten(obj, prefix, out):
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten(v, key + ".", out)
        elif not isinstance(v, list):
            out[key] = v
    return out


def _number(v):
    """A grid value as given on the command line: int or float when it reads as one."""
    if not isinstance(v, str):
        return v
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


def is_summary(obj):
    """True if a parsed JSON object is a moerun run summary."""
    return isinstance(obj, dict) and "moerun_version" in obj and "steps_completed" in obj


def read_summary(path):
    """One summary JSON as a flat dict (raises ValueError if it is not a summary)."""
    with open(path) as f:
        obj = json.load(f)
    if not is_summary(obj):
        raise ValueError(f"{path}: not a moerun summary (no moerun_version / steps_completed)")
    row = {}
    point = os.path.join(os.path.dirname(os.path.abspath(path)), "point.json")
    if os.path.exists(point):
        with open(point) as f:
            pj = json.load(f)
        row.update({k: _number(v) for k, v in pj.get("grid", {}).items()})
        row["point"] = os.path.basename(os.path.dirname(os.path.abspath(path)))
        row["point_index"] = pj.get("index")
    row.update(_flatten(obj, "", {}))
    row["path"] = str(path)
    return row


def _candidates(path):
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".json") and name != "point.json":
                    yield os.path.join(root, name), False
    else:
        yield path, True


def summaries(*paths):
    """DataFrame with one row per run summary found in ``paths`` (files or directories)."""
    rows = []
    for p in paths:
        found = []
        for f, explicit in _candidates(str(p)):
            try:
                found.append(read_summary(f))
            except (ValueError, json.JSONDecodeError):
                if explicit:
                    raise
        if found and all(isinstance(r.get("point_index"), int) for r in found):
            found.sort(key=lambda r: r["point_index"])     # a sweep folder: grid order
        rows += found
    df = pd.DataFrame(rows)
    df.attrs["units"] = {"elapsed_s": "s", "tokens_per_s": "tokens/s", "bytes_sent": "bytes",
                         "inter_node_bytes": "bytes", "intra_node_bytes": "bytes",
                         "routed": "pairs", "processed": "pairs", "dropped": "pairs"}
    return df
