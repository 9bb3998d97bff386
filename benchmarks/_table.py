"""Plain-text tables; no TensorFlow import (the runner uses it)."""

from __future__ import annotations


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    value = float(value)
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-2:
        return f"{value:.3g}"
    return f"{value:.4g}" if abs(value) < 100 else f"{value:,.0f}"


def table(rows, case=None) -> str:
    """``rows``: dicts with metric, ours, baseline, ratio, unit, note (and case)."""
    headers = ("case", "metric", "ours", "baseline", "ours/base", "unit", "note")
    lines = [(r.get("case", case) or "", r["metric"], fmt(r["ours"]), fmt(r["baseline"]),
              fmt(r["ratio"]), r["unit"], r.get("note", "")) for r in rows]
    widths = [max([len(h)] + [len(line[i]) for line in lines]) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    return "\n".join(out)
