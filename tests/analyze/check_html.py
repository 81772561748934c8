#!/usr/bin/python3
"""check_html.py - the HTML report in headless Chromium (Debian package chromium).

Usage: check_html.py MOERUN_ANALYZE CHROMIUM WORKDIR

Writes the fixture (fixture.py), renders its report with moerun-analyze --html, loads it
from a file:// URL in headless Chromium with console logging on, and checks: no console
message at all (the report has no script, so any message is an error), every chart <svg>
with its known id present in the DOM Chromium built (each chart drawn, not a "missing"
placeholder, for the full fixture), no external URL fetched; then saves a screenshot
(WORKDIR/analyze_html/report.png) and checks it is a non-trivial PNG. A negative control
(a page that logs a console error) proves the console check can fail.
"""
import os
import re
import shutil
import subprocess
import sys

import fixture

CHARTS = ["load-hist", "expert-step-heatmap", "routing-map", "rank-traffic", "phase-breakdown",
          "drop-entropy", "gate-confidence"]
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def chromium(exe, work, url, *extra):
    args = [exe, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
            "--user-data-dir=" + os.path.join(work, "profile"), "--no-first-run",
            "--disable-background-networking", *extra, url]
    p = subprocess.run(args, capture_output=True, text=True, timeout=180)
    return p.returncode, p.stdout, p.stderr


def console_lines(err):
    return [l for l in err.splitlines() if ":CONSOLE" in l]


def main():
    exe, chrome, work = sys.argv[1], sys.argv[2], os.path.join(sys.argv[3], "analyze_html")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    h5 = os.path.join(work, "full.h5")
    fixture.write(h5, "full")
    html = os.path.join(work, "report.html")
    p = subprocess.run([exe, h5, "--html", html, "--peak-gflops", "1"], capture_output=True,
                       text=True, timeout=120)
    check(p.returncode == 0, f"moerun-analyze exit {p.returncode}: {p.stderr}")

    # negative control: a console error must be seen
    neg = os.path.join(work, "negative.html")
    with open(neg, "w") as fh:
        fh.write('<!DOCTYPE html><html><body><script>console.error("control")</script></body></html>')
    rc, _, err = chromium(chrome, work, "file://" + neg, "--dump-dom")
    check(any("control" in l for l in console_lines(err)), "negative control: console error not detected")

    rc, dom, err = chromium(chrome, work, "file://" + html, "--dump-dom")
    check(rc == 0, f"chromium --dump-dom exit {rc}")
    cons = console_lines(err)
    check(cons == [], f"console messages: {cons}")
    for c in CHARTS:
        m = re.search(r'<svg id="%s-0"[^>]*>(.*?)</svg>' % re.escape(c), dom, re.S)
        check(m is not None, f"chart {c}-0 missing from the DOM")
        if m:
            check("missing:" not in m.group(1), f"chart {c}-0 shows 'missing' for the full fixture")
            check(m.group(1).count("<rect") + m.group(1).count("<path") >= 3, f"chart {c}-0 is empty")
    check(re.search(r'(src|href)="(https?:)?//', dom) is None, "external reference in the DOM")
    with open(os.path.join(work, "dom.html"), "w") as fh:
        fh.write(dom)

    png = os.path.join(work, "report.png")
    rc, _, err = chromium(chrome, work, "file://" + html, "--hide-scrollbars",
                          "--window-size=1200,5200", "--screenshot=" + png)
    check(rc == 0 and os.path.exists(png), f"screenshot not written (exit {rc})")
    if os.path.exists(png):
        data = open(png, "rb").read()
        check(data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000, f"screenshot {len(data)} bytes")
        print("screenshot:", png, len(data), "bytes")
    if failures:
        print(f"check_html: {len(failures)} failures")
        return 1
    print("check_html: ok,", len(CHARTS), "charts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
