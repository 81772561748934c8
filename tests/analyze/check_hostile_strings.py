#!/usr/bin/python3
"""check_hostile_strings.py - every string a telemetry file (or --vocab) gives moerun-analyze
is escaped in every output format (issue 15).

A fixture (fixture.py) gets markup, Markdown table breakers and terminal escape sequences
injected into every string it holds: root attributes, dataset attributes (units,
description, and in a second file the column and event-kind names), host names, cpusets,
event messages, the --vocab lines, and (two runs together) a file name in the HTML
differences table. moerun-analyze then writes Markdown, HTML, JSON and
the terminal summary, and each must carry the text inertly:
  HTML      no '<script', no control character (illegal in XML/SVG);
  Markdown  no unescaped '<script' or '|PIPE|', no control character;
  terminal  no ESC, BEL or C1 control (they would act on the terminal);
  JSON      parses, and gives the injected status back exactly (escaped, not altered).
Usage: check_hostile_strings.py MOERUN_ANALYZE WORKDIR
"""
import json
import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

analyze, work = sys.argv[1], sys.argv[2]
fails = []


def payload(name):
    return (f"<script>alert('{name}')</script>|PIPE|*em*[l](javascript:x)"
            f"\x1b[31m{name}\x1b]0;title\x07\u009b2J\n# head")


def inject(path, names_too):
    fixture.write(path, "full")
    with h5py.File(path, "r+") as f:
        for k in list(f.attrs):
            if isinstance(f.attrs[k], str):
                f.attrs[k] = payload("root." + k)
        def visit(name, obj):
            for k in list(obj.attrs):
                v = obj.attrs[k]
                if isinstance(v, str) and k in ("units", "description"):
                    obj.attrs[k] = payload(name + "." + k)
                elif names_too and k in ("columns", "kind_names") and len(v):
                    obj.attrs[k] = [payload(name + "." + k + str(i)) for i in range(len(v))]
        f.visititems(visit)
        for d in ("topology/hostname", "topology/cpuset"):
            n = f[d].shape[0]
            del f[d]
            f.create_dataset(d, data=np.array([payload(d)[:60].encode() for _ in range(n)],
                                              dtype="S64"))
        ev = f["events"][...]
        for i in range(len(ev)):
            ev[i]["message"] = payload("events.message")[:150].encode()
        f["events"][...] = ev


vocab = os.path.join(work, "hostile-vocab.txt")
with open(vocab, "w", encoding="utf-8") as v:
    for i in range(64):
        v.write(payload(f"vocab{i}").replace("\n", " ") + "\n")

for tag, names_too in (("attrs", False), ("names", True)):
    h5 = os.path.join(work, f"hostile-{tag}.h5")
    inject(h5, names_too)
    md, html, js = (os.path.join(work, f"hostile-{tag}.{e}") for e in ("md", "html", "json"))
    r = subprocess.run([analyze, h5, "--markdown", md, "--html", html, "--json", js,
                        "--vocab", vocab], capture_output=True)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    if r.returncode not in (0, 1):
        fails.append(f"{tag}: exit {r.returncode}")
    ctrl = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]")
    if ctrl.search(out):
        fails.append(f"{tag}: terminal output carries a control character: "
                     f"{ctrl.search(out).group()!r}")
    if r.returncode == 1:
        # refused: the message must name the file, one line, no controls
        print(f"{tag}: refused: {r.stderr.decode().strip()}")
        if os.path.exists(md) or os.path.exists(html):
            fails.append(f"{tag}: refused but reports were written")
        continue
    for path, kind in ((md, "markdown"), (html, "html")):
        text = open(path, encoding="utf-8").read()
        raw = re.search(r"(?<!\\)<script", text) if kind == "markdown" else "<script" in text
        if raw:
            fails.append(f"{tag}: {kind} carries '<script' raw")
        if ctrl.search(text.replace("\n", "").replace("\t", "")):
            fails.append(f"{tag}: {kind} carries a control character")
        if kind == "markdown" and re.search(r"(?<!\\)\|PIPE", text):
            fails.append(f"{tag}: markdown carries an unescaped '|' from the file")
        n = text.count("PIPE")
        print(f"{tag}: {kind}: {n} injected strings shown, all escaped")
    doc = json.load(open(js, encoding="utf-8"))
    status = doc["runs"][0].get("status")
    if status != payload("root.status"):
        fails.append(f"{tag}: JSON status is {status!r}, want the injected text exactly")
    print(f"{tag}: terminal: {out.count('PIPE')} injected strings shown, no control character")

# Two runs, one whose file name carries markup and control characters: the HTML differences
# table (analyze_compare.c) lists the file names, through the same escaper as the rest.
odd = os.path.join(work, "hostile-\x1b[31m<script>x\x07\u009b.h5")
shutil.copyfile(os.path.join(work, "hostile-attrs.h5"), odd)
html = os.path.join(work, "hostile-two.html")
r = subprocess.run([analyze, odd, os.path.join(work, "hostile-names.h5"), "--html", html],
                   capture_output=True)
if r.returncode != 0:
    fails.append(f"two runs: exit {r.returncode}: {r.stderr.decode('utf-8', 'replace')}")
else:
    text = open(html, encoding="utf-8").read()
    k = text.find("<h2>Differences against run 0</h2>")
    diff = text[k:] if k >= 0 else ""
    if "&lt;script&gt;x" not in diff:
        fails.append("two runs: the HTML differences table does not show the file name")
    if "<script" in text or ctrl.search(text.replace("\n", "").replace("\t", "")):
        fails.append("two runs: HTML carries '<script' raw or a control character")
    print("two runs: html: differences table shows the hostile file name escaped")

for f in fails:
    print("FAIL:", f)
sys.exit(1 if fails else 0)
