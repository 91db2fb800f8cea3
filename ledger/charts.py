"""Charts as inline SVG, drawn on the server: the report opens offline, with no script and no runtime to ship.

Each function returns one ``<svg>`` element. Every drawn datum is an element of class ``mark`` with a
``<title>`` (the browser shows it on hover) and a ``data-value``, so a test can count what was drawn and
read it back. Colours come from one palette, in series order; text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#2f6fb0", "#e07b39", "#3a9a5b", "#c0392b", "#8e6bb8", "#7f8c8d", "#d4a017", "#17a2b8")
WIDTH, HEIGHT = 720, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 14, 34


def number(value: float) -> str:
    """A figure as people read it: thousands separated, at most two decimals, no trailing zeros."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:,.2f}".rstrip("0").rstrip(".")


def _svg(body: list[str], label: str, height: int = HEIGHT, width: int = WIDTH) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}"'
            f' height="{height}" role="img" aria-label="{escape(label)}">{"".join(body)}</svg>')


def _axes(top: float, labels: Sequence[str], height: int = HEIGHT) -> list[str]:
    """The y axis from 0 to ``top`` (three gridlines) and up to eight x labels, evenly spread."""
    plot_h = height - _TOP - _BOTTOM
    out = []
    for i in range(3):
        value = top * i / 2
        y = _TOP + plot_h - plot_h * i / 2
        out.append(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{number(value)}</text>')
    step = max(1, -(-len(labels) // 8))
    slot = (WIDTH - _LEFT - _RIGHT) / max(len(labels), 1)
    for i in range(0, len(labels), step):
        x = _LEFT + slot * (i + 0.5)
        out.append(f'<text x="{x:.1f}" y="{height - 12}" text-anchor="middle" font-size="11">{escape(labels[i])}</text>')
    return out


def _top(values: Sequence[float]) -> float:
    most = max([v for v in values if v is not None] or [0.0])
    return most if most > 0 else 1.0


def bars(labels: Sequence[str], series: Mapping[str, Sequence[float]], title: str) -> str:
    """Bars per label (a day), one colour per series, side by side."""
    names = list(series)
    top = _top([v for n in names for v in series[n]])
    plot_h = HEIGHT - _TOP - _BOTTOM
    slot = (WIDTH - _LEFT - _RIGHT) / max(len(labels), 1)
    width = min(slot * 0.8 / max(len(names), 1), 48.0)
    body = _axes(top, labels)
    for i, label in enumerate(labels):
        for k, name in enumerate(names):
            value = series[name][i]
            h = plot_h * value / top
            x = _LEFT + slot * (i + 0.5) - width * len(names) / 2 + width * k
            body.append(f'<rect class="mark" data-series="{escape(name)}" data-value="{value}" x="{x:.1f}"'
                        f' y="{_TOP + plot_h - h:.1f}" width="{max(width - 1, 1):.1f}" height="{max(h, 0.5):.1f}"'
                        f' fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(label)} {escape(name)}:'
                        f' {number(value)}</title></rect>')
    return _svg(body + _legend(names), title)


def lines(labels: Sequence[str], series: Mapping[str, Sequence[float]], title: str) -> str:
    """A line per series over the labels (days), with a dot per value."""
    names = list(series)
    top = _top([v for n in names for v in series[n]])
    plot_h = HEIGHT - _TOP - _BOTTOM
    slot = (WIDTH - _LEFT - _RIGHT) / max(len(labels), 1)
    body = _axes(top, labels)
    for k, name in enumerate(names):
        colour = PALETTE[k % len(PALETTE)]
        points = [(_LEFT + slot * (i + 0.5), _TOP + plot_h - plot_h * v / top) for i, v in enumerate(series[name])]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (x, y), label, value in zip(points, labels, series[name]):
            body.append(f'<circle class="mark" data-series="{escape(name)}" data-value="{value}" cx="{x:.1f}"'
                        f' cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(label)} {escape(name)}:'
                        f' {number(value)}</title></circle>')
    return _svg(body + _legend(names), title)


def hbars(rows: Sequence[tuple[str, float]], title: str, unit: str = "") -> str:
    """One horizontal bar per row (a tool, a model, a user), longest first as given."""
    height = 24 + 22 * max(len(rows), 1)
    top = _top([v for _, v in rows])
    left, span = 180, WIDTH - 180 - 90
    body = []
    for i, (label, value) in enumerate(rows):
        y = 12 + 22 * i
        w = span * value / top
        body.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" font-size="12">{escape(label[:28])}</text>')
        body.append(f'<rect class="mark" data-value="{value}" x="{left}" y="{y}" width="{max(w, 1):.1f}" height="18"'
                    f' fill="{PALETTE[0]}"><title>{escape(label)}: {number(value)}{unit}</title></rect>')
        body.append(f'<text x="{left + w + 6:.1f}" y="{y + 14}" font-size="12">{number(value)}{unit}</text>')
    return _svg(body, title, height)


def _legend(names: Sequence[str]) -> list[str]:
    out, x = [], _LEFT
    for k, name in enumerate(names):
        out.append(f'<rect x="{x}" y="{HEIGHT - 10}" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 14}" y="{HEIGHT - 1}" font-size="11">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    return out


def timeline(items: Sequence[tuple[str, float, float, str]], start: float, end: float, title: str) -> str:
    """A session's events on one time axis: (lane, start and end in seconds, label) each; a lane per kind
    (messages as dots, invocations as duration bars, changes as ticks), in the order lanes first appear."""
    lanes = list(dict.fromkeys(lane for lane, *_ in items))
    height = 40 + 34 * max(len(lanes), 1)
    left, span = 110, WIDTH - 110 - 16
    scale = span / max(end - start, 1e-6)
    body = [f'<text x="{left}" y="{height - 8}" font-size="11">0 s</text>',
            f'<text x="{left + span}" y="{height - 8}" text-anchor="end" font-size="11">{number(end - start)} s</text>']
    for k, lane in enumerate(lanes):
        y = 16 + 34 * k
        body.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end" font-size="12">{escape(lane)}</text>')
        body.append(f'<line x1="{left}" x2="{left + span}" y1="{y + 9}" y2="{y + 9}" stroke="#eee"/>')
    for lane, first, last, label in items:
        k = lanes.index(lane)
        y, x = 16 + 34 * k, left + (first - start) * scale
        colour = PALETTE[k % len(PALETTE)]
        tip = f"<title>{escape(label)}</title>"
        if last > first:
            body.append(f'<rect class="mark" data-value="{last - first}" x="{x:.1f}" y="{y}" height="18"'
                        f' width="{max((last - first) * scale, 2):.1f}" fill="{colour}">{tip}</rect>')
        else:
            body.append(f'<circle class="mark" data-value="{first - start}" cx="{x:.1f}" cy="{y + 9}" r="5"'
                        f' fill="{colour}">{tip}</circle>')
    return _svg(body, title, height)


def tree(nodes: Sequence[tuple[str, str | None, str]], focus: str, title: str) -> str:
    """A lineage: (id, parent id or None, label) per session, drawn as a tree from the root, ``focus`` marked."""
    children: dict[str | None, list[str]] = {}
    labels = {}
    for node, parent, label in nodes:
        children.setdefault(parent if parent in {n for n, *_ in nodes} else None, []).append(node)
        labels[node] = label
    placed: dict[str, tuple[float, float]] = {}
    row = 0

    def place(node: str, depth: int) -> None:
        nonlocal row
        placed[node] = (20 + 170 * depth, 20 + 36 * row)
        row += 1
        for child in children.get(node, []):
            place(child, depth + 1)

    for root in children.get(None, []):
        place(root, 0)
    height = 30 + 36 * max(row, 1)
    body = []
    for node, parent, _ in nodes:
        if parent in placed and node in placed:
            (x1, y1), (x2, y2) = placed[parent], placed[node]
            body.append(f'<path d="M{x1 + 8},{y1 + 8} V{y2 + 8} H{x2}" fill="none" stroke="#999"/>')
    for node, (x, y) in placed.items():
        colour = PALETTE[1] if node == focus else PALETTE[0]
        body.append(f'<rect class="mark" data-value="{escape(node)}" x="{x}" y="{y}" width="16" height="16" rx="3"'
                    f' fill="{colour}"><title>{escape(labels[node])}</title></rect>')
        body.append(f'<text x="{x + 22}" y="{y + 13}" font-size="12">{escape(labels[node][:40])}</text>')
    return _svg(body, title, height)
