"""Plotly figures drawn from ketawatch.charts descriptions, so the screen shows what the PDF shows.

Every figure uses the same left margin and date range, so the charts stacked on the patient
page line up on one time axis. Colours are chosen to read on light and dark backgrounds, and
never carry meaning alone: lines are labelled, markers differ in shape, levels are named.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import textwrap

import plotly.graph_objects as go

from ketawatch.charts import ChartSpec, Series

LEFT_MARGIN = 250  # wide enough for the warning-sign labels, used by every chart so the axes align
#: Room below the plot for the date ticks and the year Plotly prints under the first of them.
BOTTOM_MARGIN = 48
ROLE_COLOURS = {
    "value": "#3b82c4",
    "trend": "#8a63d2",
    "baseline": "#7a869a",
    "request": "#e8590c",
    "flag": "#d6336c",
    "pre": "#3b82c4",
    "post": "#e8590c",
    "benefit": "#2f9e44",
    "level": "#7a869a",
    # 3:1 or more on the light and the dark background alike (accessibility review: #4dabf7 and #f59f00 were 2.5:1 and 2.1:1)
    "mild": "#228be6",
    "moderate": "#e67700",
    "severe": "#e03131",
}
#: Response and remission are both PHQ-9 targets; drawn alike, they were told apart only by height (browser check).
LINE_STYLES = {"plan": ("#7a869a", "solid"), "threshold": ("#d9480f", "dash"), "target": ("#2f9e44", "dot"),
               "remission": ("#2f9e44", "dashdot")}
# Threshold bands are neutral grey so that colour on a chart's background means one thing only: the level.
BAND_FILLS = {"caution": "rgba(100, 116, 139, 0.07)", "alert": "rgba(100, 116, 139, 0.15)"}
LEVEL_FILLS = {"green": "rgba(47, 158, 68, 0.05)", "amber": "rgba(245, 159, 0, 0.13)", "red": "rgba(224, 49, 49, 0.12)"}
LEVEL_WORDS = {"green": "Green", "amber": "Amber", "red": "Red"}
HEAT_SCALE = [
    [0.0, "rgba(134, 142, 150, 0.42)"], [0.125, "rgba(134, 142, 150, 0.42)"],
    [0.125, "#ffd8a8"], [0.375, "#ffd8a8"],
    [0.375, "#fd7e14"], [0.625, "#fd7e14"],
    [0.625, "#c92a2a"], [1.0, "#c92a2a"],
]
MARKER_SIZES = {"request": 13, "flag": 12, "mild": 11, "moderate": 13, "severe": 14}


def _wrap(text: str, width: int = 70) -> str:
    return "<br>".join(textwrap.wrap(text, width))


def _hover_text(series: Series) -> list[str] | None:
    """The series' hover texts as Plotly shows them: it reads tags in them, so '<' and '&' are escaped to show as written."""
    # wrapped, as a level's reasons ran off the chart's edges on one line (clinician's second browser review)
    return [_wrap(html.escape(text, quote=False), 90) for text in series.hover] if series.hover else None


def _trace(series: Series) -> go.BaseTraceType:
    colour = ROLE_COLOURS.get(series.role, "#3b82c4")
    hover = _hover_text(series)
    # The text and the series' name only: with "x" and "y" Plotly added '(Oct 5, 2026, 0.5952381)' (clinician's browser
    # review); the text gives the date and the value in clinic words.
    shown = "text+name" if hover else None
    if series.style == "bar":
        return go.Bar(x=list(series.x), y=list(series.y), name=series.name, marker_color=colour, opacity=0.55,
                      hovertext=hover, hoverinfo=shown)
    mode = {"line": "lines", "markers": "markers", "line+markers": "lines+markers"}[series.style]
    # An open marker is drawn larger, around whatever filled marker shares its point (a session where the
    # patient asked both to come earlier and for more shows both).
    hollow = series.symbol.endswith("-open") and series.role in MARKER_SIZES
    size = MARKER_SIZES.get(series.role, 7) + (6 if hollow else 0)
    dash = {"trend": "dash", "baseline": "dashdot"}.get(series.role, "solid")
    return go.Scatter(
        x=list(series.x), y=list(series.y), name=series.name, mode=mode,
        line={"color": colour, "dash": dash, "width": 2 if series.role in ("value", "benefit") else 1.5,
              "shape": "hv" if series.role == "level" else "linear"},
        marker={"color": colour, "symbol": series.symbol, "size": size, "line": {"width": 2 if hollow else 1, "color": colour}},
        hovertext=hover, hoverinfo=shown,
    )


#: Charts whose series are read at the same session (before and after dosing), hovered as one date.
SAME_DATE_CHARTS = ("blood_pressure", "heart_rate")


def _heatmap(spec: ChartSpec) -> go.Heatmap:
    heat = spec.heatmap
    notes = [_wrap(n) for n in heat.row_notes]
    custom = [[[word, note] for word in row] for row, note in zip(heat.cell_text, notes)]
    # Print the answer in every answered cell, "not at all" (0) too: its quiet grey was all that told it from an empty,
    # unanswered cell (accessibility review: 1.6:1); "not answered" leaves the cell empty.
    labels = [["" if v is None or v != v else str(int(v)) for v in row] for row in heat.z]
    return go.Heatmap(
        x=list(heat.x), y=list(heat.y), z=[list(r) for r in heat.z], zmin=heat.zmin, zmax=heat.zmax,
        colorscale=HEAT_SCALE, xgap=1, ygap=1, customdata=custom, name="Warning signs",
        text=labels, texttemplate="%{text}", textfont={"size": 10},
        # the date as everywhere else ("5 Oct 2026", not "05 Oct"), the passage named as the reasons name it
        # (clinician's second browser review)
        hovertemplate=("<b>%{y}</b><br>%{x|%-d %b %Y}: %{customdata[0]}<br><i>Source passage: %{customdata[1]}</i>"
                       "<extra></extra>"),
        showscale=False,  # the number in each cell carries the answer; a colour bar would narrow the time axis
    )


def _at_noon(day: dt.date, hours: int) -> dt.datetime:
    """Midnight of `day` moved by `hours`, so a day's rectangle spans the whole day around its point."""
    return dt.datetime.combine(day, dt.time()) + dt.timedelta(hours=hours)


def _x_limits(lo: dt.date, hi: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The shared date axis: the charted days with room either side (a day, or 2% of a long span, as in the PDF).

    Half a day was about a pixel on a year's chart, so the newest point was cut in half at the edge.
    """
    pad = dt.timedelta(days=max(1.0, (hi - lo).days * 0.02))
    return _at_noon(lo, 0) - pad, _at_noon(hi, 0) + pad


def _decorations(spec: ChartSpec) -> tuple[list[dict], list[dict]]:
    """Level shading, threshold bands and reference lines as plain layout shapes and labels (fast to build)."""
    shapes: list[dict] = []
    notes: list[dict] = []
    lo, hi = spec.x_range
    left, right = _x_limits(lo, hi)
    span_days = max((hi - lo).days, 1)
    # Not behind the warning-sign grid: an unanswered (empty) cell there showed the shading as if it were an
    # answer, and 'not at all' grey turned mauve. The level chart above it shows the same periods.
    for period in ([] if spec.heatmap is not None else spec.levels):
        start, end = _at_noon(period.start, -12), _at_noon(period.end, 12)
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": start, "x1": end, "y0": 0, "y1": 1,
                       "fillcolor": LEVEL_FILLS.get(period.level, "rgba(0,0,0,0)"), "line": {"width": 0},
                       "layer": "below"})
        # Name the level where there is room; a short period is named on the level chart above.
        roomy = (period.end - period.start).days + 1 >= 0.08 * span_days
        if period.level != "green" and roomy:
            notes.append({"xref": "x", "yref": "paper", "x": start, "y": 1, "xanchor": "left", "yanchor": "top",
                          "text": LEVEL_WORDS.get(period.level, period.level), "showarrow": False,
                          "font": {"size": 12}})
    for band in spec.bands:
        shapes.append({"type": "rect", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": band.y0, "y1": band.y1,
                       "fillcolor": BAND_FILLS.get(band.role, "rgba(0,0,0,0.05)"), "line": {"width": 0},
                       "layer": "below"})
        notes.append({"xref": "paper", "yref": "y", "x": 1, "y": band.y1, "xanchor": "right", "yanchor": "top",
                      "text": band.label, "showarrow": False, "font": {"size": 10}})
    for line in spec.lines:
        colour, dash = _line_style(line)
        # Under the points, over the grid: drawn above them, the dashed "20% above plan" line hid the orange "asked for
        # a higher dose" triangle on it (clinician's browser review). Plotly draws a shape on "paper" under the grid
        # whatever its layer, so the line spans the axis' dates.
        shapes.append({"type": "line", "xref": "x", "yref": "y", "x0": left, "x1": right, "y0": line.y, "y1": line.y,
                       "line": {"color": colour, "dash": dash, "width": 1.5}, "layer": "between"})
        # Named in the legend (_line_key), as the PDF does, not on the chart: at the right edge the label covered the
        # newest points (clinician review), at the left the induction points and the level names (browser check).
    return shapes, notes


def _line_style(line) -> tuple[str, str]:
    """The colour and dash of a reference line, the same on the chart and in its legend entry."""
    return LINE_STYLES.get(line.role, ("#7a869a", "dash"))


def _line_key(line) -> go.Scatter:
    """A legend entry, drawn like the line, for one reference line (a plan or a threshold): no point of its own."""
    colour, dash = _line_style(line)
    return go.Scatter(x=[None], y=[None], mode="lines", name=line.label, hoverinfo="skip",
                      line={"color": colour, "dash": dash, "width": 1.5})


def _y_limits(spec: ChartSpec) -> list[float] | None:
    """A chart's value range with room above its highest point and line for the level's name: Plotly's own range
    ended at the highest value, so the 84 mg point sat under 'Amber' and a 14-day bar ran into the 14-day plan line
    (clinician's browser review). Bars start at 0."""
    values = [v for series in spec.series for v in series.y if v is not None and math.isfinite(v)]
    values += [line.y for line in spec.lines]
    if not values:
        return None
    low, high = min(values), max(values)
    bars_from_zero = any(series.style == "bar" for series in spec.series) and low >= 0
    low = 0.0 if bars_from_zero else low
    span = (high - low) or abs(high) or 1.0
    return [low if bars_from_zero else low - 0.1 * span, high + 0.35 * span]


def figure(spec: ChartSpec) -> go.Figure:
    """One Plotly figure for one chart description, with the level history shaded and named behind it."""
    traces = [_heatmap(spec)] if spec.heatmap is not None else []
    traces += [_trace(series) for series in spec.series if len(series.x)]
    traces += [_line_key(line) for line in spec.lines]
    lo, hi = spec.x_range
    shapes, notes = _decorations(spec)
    yaxis: dict = {"title": {"text": spec.y_label}, "automargin": False, "zeroline": False}
    if spec.y_range is not None:
        yaxis["range"] = list(spec.y_range)
    elif spec.heatmap is None and not spec.y_categories:
        yaxis["range"] = _y_limits(spec)
    if spec.y_categories:
        yaxis.update(tickvals=list(range(len(spec.y_categories))), ticktext=list(spec.y_categories))
    if spec.heatmap is not None:
        yaxis.update(autorange="reversed", title=None)
    layout = {
        "title": {"text": spec.title, "x": 0, "xanchor": "left", "font": {"size": 16}},
        "height": spec.height,
        "margin": {"l": LEFT_MARGIN, "r": 30, "t": 60, "b": BOTTOM_MARGIN},
        "xaxis": {"range": list(_x_limits(lo, hi)), "type": "date", "automargin": False, "showgrid": True},
        "yaxis": yaxis,
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1, "font": {"size": 11}},
        # before and after dosing share a date, and the nearest point hid the other ("SpO₂ before" under the ✕ of
        # "after"; clinician's second browser review): these charts list every reading of the date hovered
        "hovermode": "x unified" if spec.key in SAME_DATE_CHARTS else "closest",
        # the series' whole name beside its value: Plotly cut it at 15 characters, "Patient aske..." (clinician's
        # second browser review)
        "hoverlabel": {"namelength": -1},
        "bargap": 0.3,
        "showlegend": spec.heatmap is None and spec.key != "levels",
        "shapes": shapes,
        "annotations": notes,
    }
    return go.Figure(data=traces, layout=layout)
