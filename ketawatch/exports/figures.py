"""Static matplotlib renderings of `ketawatch.charts` descriptions, legible in black and white.

The dashboard draws the same `ChartSpec`s with Plotly, so the printed summary shows the same
series, thresholds, bands and level periods as the screen. On paper nothing relies on colour:
series differ by line style and marker shape, bands and level periods by hatching, levels are
also written in words above each period, and warning-sign cells carry their score as a digit.
Figures are drawn with matplotlib's object API (no pyplot, no global state, no display and no
browser needed), so exports can run side by side on a headless server.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from PIL import Image

from ketawatch.charts import ChartSpec, Series

#: Printed width of a figure (inches), inches per Plotly pixel of the spec's height, resolution.
WIDTH_IN, INCH_PER_PX, DPI = 7.4, 0.0085, 150
#: The charts of the printed review, in order (vitals and side effects are tables on paper).
PRINTED_CHARTS = ("levels", "craving", "warning_signs", "dose", "dose_mg", "interval", "sds", "phq9")

_INK, _GREY, _LIGHT = "black", "0.4", "0.82"
#: Plotly marker names of the chart descriptions -> (matplotlib marker, hollow).
_MARKERS = {
    "circle": ("o", False), "circle-open": ("o", True), "diamond": ("D", False), "diamond-open": ("D", True),
    "triangle-up": ("^", False), "triangle-down": ("v", False), "x": ("x", False), "square": ("s", False),
    "square-open": ("s", True), "cross": ("P", False),
}
#: Series role -> (line style, grey level, line width): roles are told apart without colour.
_ROLE_LINES = {
    "value": ("-", _INK, 1.3), "benefit": ("-", _INK, 1.3), "level": ("-", _GREY, 1.0), "trend": (":", _INK, 1.3),
    "baseline": ("--", _GREY, 1.0), "pre": ("-", _INK, 1.0), "post": ("--", _INK, 1.0),
}
_REF_LINES = {"plan": ("-", _GREY, 1.0), "threshold": ("--", _INK, 1.0), "target": (":", _INK, 1.2),
              "remission": ("-.", _INK, 1.0)}
_BANDS = {"caution": ("0.93", "...."), "alert": ("0.86", "////")}
_LEVEL_SHADE = {"amber": ("0.94", "\\\\\\"), "red": ("0.84", "xxx")}


@dataclass(frozen=True)
class FigureImage:
    """One rendered figure: its title for the page, its PNG bytes and the chart's note as a caption."""

    title: str
    png: bytes
    caption: str = ""


def _new(plot_in: float, legend_rows: int = 0) -> tuple[Figure, object]:
    """A figure whose plot area is `plot_in` inches tall, with room above for level names and below for the legend."""
    top_in, bottom_in = 0.3, 0.42 + 0.15 * legend_rows
    height = plot_in + top_in + bottom_in
    figure = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
    FigureCanvasAgg(figure)
    # Fixed margins instead of a layout engine: one draw per figure instead of two.
    figure.subplots_adjust(left=0.255, right=0.985, bottom=bottom_in / height, top=1 - top_in / height)
    ax = figure.add_subplot()
    ax.tick_params(labelsize=7)
    ax.grid(True, axis="y", color=_LIGHT, linewidth=0.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return figure, ax


def _png(figure: Figure) -> bytes:
    """The drawn figure as a greyscale PNG: every colour used here is a grey, so one channel loses
    nothing, and it makes the images a third of the size and the PDF quicker to write."""
    canvas = figure.canvas
    canvas.draw()
    width, height = canvas.get_width_height(physical=True)
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("L")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(DPI, DPI))
    return buffer.getvalue()


def _x(dates) -> np.ndarray:
    return date2num(pd.to_datetime(pd.Series(list(dates), dtype=object)).to_numpy()) if len(dates) else np.array([])


#: The least room, as a share of the chart's width, for a level's name above its period: narrower periods, or names
#: that would run into the one before ("AMBERRED"), go unnamed, and the legend says which hatching is which level.
_LEVEL_NAME_ROOM = 0.07


def _draw_levels(ax, spec: ChartSpec, lo: float, hi: float) -> None:
    """Shade amber and red periods behind the data, hatched, with the level written above those wide enough."""
    room, last_named, shown = _LEVEL_NAME_ROOM * max(hi - lo, 1.0), float("-inf"), set()
    for period in spec.levels:
        shade = _LEVEL_SHADE.get(period.level)
        if shade is None:
            continue
        start, end = _x([period.start])[0] - 0.5, _x([period.end])[0] + 0.5
        ax.axvspan(start, end, facecolor=shade[0], hatch=shade[1], edgecolor="0.72", linewidth=0, hatch_linewidth=0.5,
                   zorder=0, label=None if period.level in shown else f"{period.level.capitalize()} level")
        shown.add(period.level)
        middle = (start + end) / 2
        if end - start >= room and middle - last_named >= room:
            ax.text(middle, 1.0, period.level.upper(), transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                    fontsize=6, color=_GREY)
            last_named = middle


def _draw_series(ax, series: Series, bar_width: float) -> None:
    if not len(series.x):
        return
    x, y = _x(series.x), np.asarray(series.y, dtype="float64")
    if series.style == "bar":
        ax.bar(x, y, width=bar_width, facecolor="white", edgecolor=_INK, hatch="////", linewidth=0.7, label=series.name, zorder=2)
        return
    style, grey, width = _ROLE_LINES.get(series.role, ("-", _INK, 1.2))
    marker, hollow = _MARKERS.get(series.symbol, ("o", False))
    if series.role in ("request", "flag", "mild", "moderate", "severe"):
        # An open marker is larger and see-through, so a filled marker at the same point shows inside it.
        size = {"moderate": 6, "severe": 7}.get(series.role, 6) + (3 if hollow else 0)
        face = "none" if hollow else ("white" if series.role == "mild" else _INK)
        ax.plot(x, y, linestyle="none", marker=marker, markersize=size, color=_INK, markerfacecolor=face,
                label=series.name, zorder=4)
        return
    line = style if "line" in series.style else "none"
    # A level holds until the next record changes it (as on screen): a step, never a slope through a level not held.
    ax.plot(x, y, linestyle=line, color=grey, linewidth=width, label=series.name, zorder=3,
            drawstyle="steps-post" if series.role == "level" else "default",
            marker=marker if "markers" in series.style else None, markersize=3.2,
            markerfacecolor="white" if hollow else grey)


def _draw_heatmap(ax, spec: ChartSpec, lo: float, hi: float) -> None:
    """Answers as grey squares (white 0 to black 3) with the score written in each, on the shared time axis."""
    heat = spec.heatmap
    x = _x(heat.x)
    z = np.asarray(heat.z, dtype="float64").reshape(len(heat.y), len(heat.x))
    rows = np.arange(len(heat.y))
    xx, yy = np.meshgrid(x, rows)
    have = ~np.isnan(z)
    # A square as large as the closest two check-ins and the row height allow (in points).
    box = ax.get_position()
    width_in, height_in = box.width * WIDTH_IN, box.height * ax.figure.get_figheight()
    gap_days = float(np.diff(np.unique(x)).min()) if len(np.unique(x)) > 1 else 7.0
    column_in = width_in * gap_days / max(hi - lo + 2, 1)
    side = float(np.clip(72 * min(column_in, height_in / max(len(rows), 1)) * 0.85, 2, 13))
    # 0 light grey (as on screen: the lightest grey cell is "not at all"), darker with each step to 3; every answer's
    # digit printed, 0 too, as on screen: on a hatched red period a light square without its 0 was hard to tell from
    # no square, "not answered" (clinician's browser review).
    greys = np.clip(0.86 - 0.86 * z / max(heat.zmax, 1), 0, 1)
    ax.scatter(xx[have], yy[have], c=np.repeat(greys[have][:, None], 3, axis=1), marker="s", s=side**2, edgecolors=_INK,
               linewidths=0.3, zorder=3)
    if side >= 6:
        for xi, yi, v in zip(xx[have], yy[have], z[have]):
            ax.text(xi, yi, f"{int(v)}", ha="center", va="center", fontsize=min(6.5, side * 0.6),
                    color="white" if v >= 1.5 else _INK, zorder=4)
    ax.set_yticks(rows, [_two_lines(label) for label in heat.y], fontsize=6, linespacing=0.95)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(False)


def _two_lines(label: str, width: int = 30) -> str:
    """A row label wrapped onto at most two lines, so long warning-sign names fit the margin."""
    lines = textwrap.wrap(label, width)
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), width, placeholder="\u2026")]
    return "\n".join(lines)


def render(spec: ChartSpec) -> FigureImage:
    """One chart description as a print-ready PNG."""
    return FigureImage(spec.title, _png(draw(spec)), "" if spec.is_empty else printed_note(spec.note))


def draw(spec: ChartSpec) -> Figure:
    """One chart description drawn as a matplotlib figure, in greys only."""
    if spec.is_empty:
        figure, ax = _new(0.25)
        ax.set_axis_off()
        figure.text(0.5, 0.5, spec.empty_text, ha="center", va="center", fontsize=8, color=_GREY)
        return figure
    entries = (sum(1 for series in spec.series if len(series.x)) + len(spec.lines) + len(spec.bands)
               + len({p.level for p in spec.levels if p.level in _LEVEL_SHADE}))
    figure, ax = _new(max(0.9, spec.height * INCH_PER_PX - 0.75), legend_rows=(entries + 2) // 3)
    lo, hi = _x(spec.x_range)
    _draw_levels(ax, spec, lo, hi)
    for band in spec.bands:
        fill, hatch = _BANDS.get(band.role, ("0.92", ""))
        ax.axhspan(band.y0, band.y1, facecolor=fill, hatch=hatch, edgecolor="0.75", linewidth=0, hatch_linewidth=0.5, zorder=1,
                   label=band.label)
    if spec.heatmap is not None:
        _draw_heatmap(ax, spec, lo, hi)
    else:
        days = max(hi - lo, 1)
        for series in spec.series:
            _draw_series(ax, series, bar_width=max(days / 90, 0.8))
        for ref in spec.lines:
            style, grey, width = _REF_LINES.get(ref.role, ("--", _INK, 1.0))
            ax.axhline(ref.y, linestyle=style, color=grey, linewidth=width, label=ref.label, zorder=2)
        if spec.y_categories:
            ax.set_yticks(range(len(spec.y_categories)), spec.y_categories, fontsize=6.5)
        if spec.y_range:
            ax.set_ylim(*spec.y_range)
        ax.set_ylabel(spec.y_label, fontsize=7)
    pad = max(1.0, (hi - lo) * 0.02)
    ax.set_xlim(lo - pad, hi + pad)
    locator = AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, fontsize=6.5, loc="lower left", bbox_to_anchor=(0.01, 0.0), frameon=False, ncols=3,
                      borderaxespad=0.1)
    return figure


def printed_note(note: str) -> str:
    """The chart's note without sentences that only make sense on screen ("Hover a cell ...")."""
    sentences = [s.strip() for s in note.replace(". ", ".\n").splitlines()]
    return " ".join(s for s in sentences if s and not s.lower().startswith(("hover", "click")))


def case_figures(specs: list[ChartSpec], keys: tuple[str, ...] = PRINTED_CHARTS) -> list[FigureImage]:
    """The printed review's figures, in the order of `keys`, from the dashboard's chart descriptions."""
    by_key = {spec.key: spec for spec in specs}
    return [render(by_key[key]) for key in keys if key in by_key]
