#!/usr/bin/env python3
"""Draws the benchmark results as small self-contained SVG bar charts (no dependencies).

    scripts/chart.py [--in bench-results] [--out docs]

Inputs (each optional; a missing or unreadable one is skipped with a note on stderr):
  pid1.json  written by scripts/bench-pid1.sh:
             {"host", "versions", "generated", "measures": [{"id", "title", "unit", "note",
              "rows": [{"tool", "value" (number or null), "is_tend", "detail"}]}]}
  log.json   written by the log benchmark: a list of
             {"tool", "workload", "mb_per_s", "cpu_s_per_gib", "rss_kib"}
             (tend rows are those whose tool starts with "tend").
Outputs: docs/bench-pid1.svg and docs/bench-log.svg, one horizontal bar panel per measure,
values written on the bars, tend's bars highlighted.
"""
import argparse
import json
import sys
from html import escape
from pathlib import Path

FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"
TEND = "#d9480f"  # tend's bars
PEER = "#868e96"  # everyone else
WIDTH = 760
LABEL_W = 290  # left column: tool names
BAR_W = 340  # longest bar
ROW_H = 22
PAD = 16


def note(msg):
    print(f"chart: {msg}", file=sys.stderr)


def fmt(v):
    if v is None:
        return "N/A"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def text(x, y, s, size=12, anchor="start", weight="normal", fill="#212529"):
    return (f"<text x='{x:.1f}' y='{y:.1f}' {FONT} font-size='{size}' text-anchor='{anchor}' "
            f"font-weight='{weight}' fill='{fill}'>{escape(str(s))}</text>")


def panel(y, title, subtitle, rows):
    """rows: list of (label, value or None, is_tend, group header or None). Returns (svg, height)."""
    out = [text(PAD, y + 16, title, size=14, weight="bold")]
    y += 22
    if subtitle:
        out.append(text(PAD, y + 12, subtitle, size=11, fill="#495057"))
        y += 18
    vals = [v for _, v, _, _ in rows if v is not None]
    top = max(vals) if vals and max(vals) > 0 else 1.0
    y += 4
    for label, v, is_tend, header in rows:
        if header:
            out.append(text(PAD, y + 14, header, size=12, weight="bold", fill="#495057"))
            y += ROW_H
        color = TEND if is_tend else PEER
        weight = "bold" if is_tend else "normal"
        out.append(text(LABEL_W - 8, y + 15, label, anchor="end", weight=weight,
                        fill=TEND if is_tend else "#212529"))
        if v is None:
            out.append(text(LABEL_W + 4, y + 15, "N/A", fill="#868e96"))
        else:
            w = max(1.0, BAR_W * max(v, 0) / top)
            out.append(f"<rect x='{LABEL_W}' y='{y + 3}' width='{w:.1f}' height='{ROW_H - 6}' "
                       f"rx='2' fill='{color}'/>")
            out.append(text(LABEL_W + w + 6, y + 15, fmt(v), weight=weight))
        y += ROW_H
    return "\n".join(out), y + 14


def document(title, caption, panels):
    body, y = [], 44
    for p in panels:
        svg, y = panel(y, *p)
        body.append(svg)
    lines = []
    for part in caption.split(" · ") if caption else []:
        if lines and len(lines[-1]) + len(part) < 120:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    h = y + 14 * len(lines) + 4
    head = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{h}' "
            f"viewBox='0 0 {WIDTH} {h}' role='img' aria-label='{escape(title)}'>",
            f"<rect width='{WIDTH}' height='{h}' fill='#ffffff'/>",
            text(PAD, 26, title, size=17, weight="bold")]
    tail = [text(PAD, y + 10 + 14 * i, ln, size=10, fill="#868e96") for i, ln in enumerate(lines)]
    return "\n".join(head + body + tail + ["</svg>\n"])


def load(path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        note(f"{path} missing: chart skipped")
    except (OSError, ValueError) as e:
        note(f"{path} unreadable ({e}): chart skipped")
    return None


def num(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def pid1_chart(data):
    panels = []
    for m in data.get("measures", []):
        rows = [(r.get("tool", "?").strip(), num(r.get("value")), bool(r.get("is_tend")), None)
                for r in m.get("rows", [])]
        if not rows:
            continue
        sub = f"{m.get('unit', '')}, lower is better"
        panels.append((m.get("title", m.get("id", "?")), sub, rows))
    if not panels:
        return None
    cap = " · ".join(x for x in (data.get("host"), data.get("versions"), data.get("generated")) if x)
    return document("tend vs tini, dumb-init, catatonit, s6: PID 1 and supervision", cap, panels)


LOG_METRICS = [
    ("mb_per_s", "Throughput", "MB/s, higher is better"),
    ("cpu_s_per_gib", "CPU per GiB logged", "CPU seconds per GiB, lower is better"),
    ("rss_kib", "Peak RSS", "KiB, lower is better"),
]


def log_chart(data):
    if isinstance(data, dict):
        data = data.get("results", data.get("rows", []))
    if not isinstance(data, list):
        note("log.json is not a list: chart skipped")
        return None
    workloads = []
    for r in data:
        if isinstance(r, dict) and r.get("workload") not in workloads:
            workloads.append(r.get("workload"))
    panels = []
    for key, title, sub in LOG_METRICS:
        rows = []
        for w in workloads:
            first = True
            for r in data:
                if not isinstance(r, dict) or r.get("workload") != w or key not in r:
                    continue
                tool = str(r.get("tool", "?"))
                rows.append((tool, num(r.get(key)), tool.startswith("tend"),
                             f"workload: {w}" if first else None))
                first = False
        if rows:
            panels.append((title, sub, rows))
    if not panels:
        note("log.json has no usable rows: chart skipped")
        return None
    return document("tend log vs other loggers", "", panels)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--in", dest="src", default="bench-results", type=Path)
    ap.add_argument("--out", default="docs", type=Path)
    a = ap.parse_args()
    made = 0
    for name, draw, out in (("pid1.json", pid1_chart, "bench-pid1.svg"),
                            ("log.json", log_chart, "bench-log.svg")):
        data = load(a.src / name)
        if data is None:
            continue
        svg = draw(data)
        if svg is None:
            continue
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / out).write_text(svg)
        note(f"wrote {a.out / out}")
        made += 1
    if not made:
        note("nothing to draw")


if __name__ == "__main__":
    main()
