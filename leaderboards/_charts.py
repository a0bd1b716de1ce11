"""Chart geometry computed on the server; templates/charts.html.j2 draws it as inline SVG (labels escaped)."""
from __future__ import annotations

import math
from typing import Any

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac"]
PLOT_H = 220
TOP, LEFT = 16, 56
LABEL_CHARS, CHAR_W, ANGLE = 28, 6.6, math.radians(35)  # group names: at most 28 characters of 11 px text, at 35°


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `high` (steps of 1, 2 or 5 times a power of ten)."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(math.ceil(high / step - 1e-9) + 1)]


def bar_chart(groups: list[str], series: list[str],
              values: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any] | None:
    """Grouped bars (one per series in each group) with 95% CI error bars.

    values: (group, series) -> {"value", "ci_low", "ci_high"}; missing pairs leave a gap."""
    if not values:
        return None
    top = max(max(v["value"], v.get("ci_high") or v["value"]) for v in values.values())
    ticks = nice_ticks(top)
    ymax = ticks[-1]
    bar_w = 12 if len(series) > 1 else 22
    group_w = bar_w * len(series) + 12
    # a rotated name runs right and down from under its group: the SVG grows by what the longest one needs,
    # so no name is cut at the edge
    extent = [min(len(g), LABEL_CHARS) * CHAR_W for g in groups] or [0.0]
    right = max(16.0, max(LEFT + (gi + 0.5) * group_w + 6 + e * math.cos(ANGLE) for gi, e in enumerate(extent))
                - (LEFT + group_w * len(groups)) + 8)
    bottom = 24 + max(extent) * math.sin(ANGLE)
    plot_right = LEFT + group_w * len(groups) + 16
    width = math.ceil(LEFT + group_w * len(groups) + right)

    def y(v: float) -> float:
        return TOP + PLOT_H * (1 - v / ymax)

    bars, labels = [], []
    for gi, g in enumerate(groups):
        x0 = LEFT + gi * group_w + 6
        labels.append({"x": x0 + bar_w * len(series) / 2, "y": TOP + PLOT_H + 10, "text": g})
        for si, s in enumerate(series):
            v = values.get((g, s))
            if v is None:
                continue
            x = x0 + si * bar_w
            bar = {"x": x, "y": y(v["value"]), "w": bar_w - 2, "h": TOP + PLOT_H - y(v["value"]),
                   "color": PALETTE[si % len(PALETTE)], "title": f"{s} · {g}: {v['value']:.2f}"}
            if v.get("ci_low") is not None and v.get("ci_high") is not None:
                bar["err"] = {"x": x + (bar_w - 2) / 2, "y1": y(v["ci_low"]), "y2": y(v["ci_high"])}
                bar["title"] += f" [{v['ci_low']:.2f}, {v['ci_high']:.2f}]"
            bars.append(bar)
    return {"width": width, "height": math.ceil(TOP + PLOT_H + bottom), "left": LEFT, "top": TOP, "plot_h": PLOT_H,
            "right": plot_right - 16, "ticks": [{"y": y(t), "text": f"{t:g}"} for t in ticks], "bars": bars,
            "labels": labels, "legend": [{"text": s, "color": PALETTE[i % len(PALETTE)]} for i, s in enumerate(series)]}


def scatter(points: list[dict[str, Any]], x_label: str, y_label: str) -> dict[str, Any] | None:
    """points: {"x", "y", "label"[, "ci_low", "ci_high"]}; None when there is nothing to plot."""
    if not points:
        return None
    width, plot_w = 560, 460
    xt = nice_ticks(max(p["x"] for p in points))
    yt = nice_ticks(max(p.get("ci_high") or p["y"] for p in points))

    def px(v: float) -> float:
        return LEFT + plot_w * v / xt[-1]

    def py(v: float) -> float:
        return TOP + PLOT_H * (1 - v / yt[-1])

    dots = []
    for i, p in enumerate(points):
        dot = {"x": px(p["x"]), "y": py(p["y"]), "label": p["label"], "color": PALETTE[i % len(PALETTE)],
               "title": f"{p['label']}: {p['y']:.2f} at {p['x']:.0f} {x_label}"}
        if p.get("ci_low") is not None:
            dot["err"] = {"y1": py(p["ci_low"]), "y2": py(p["ci_high"])}
        dots.append(dot)
    return {"width": width, "height": TOP + PLOT_H + 50, "left": LEFT, "top": TOP, "plot_h": PLOT_H,
            "right": LEFT + plot_w, "x_label": x_label, "y_label": y_label, "dots": dots,
            "xticks": [{"x": px(t), "text": f"{t:g}"} for t in xt],
            "yticks": [{"y": py(t), "text": f"{t:g}"} for t in yt]}
