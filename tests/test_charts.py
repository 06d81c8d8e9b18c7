"""Chart descriptions (ketawatch.charts): the series, thresholds and level shading both renderers draw."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketawatch.charts import LevelPeriod, level_periods, patient_chart_specs, record_span
from ketawatch.risk import load_rules
from seed_data.catalogue import warning_signs
from store.frames import Records
from store.vocabulary import WARNING_SIGNS

TZ = "Europe/London"
KEYS = ["levels", "craving", "warning_signs", "dose", "interval", "sds", "phq9", "blood_pressure", "heart_rate",
        "side_effects"]


def _records(*, sud: bool = False, routes=("iv",) * 4, requests=(False, True, False, True)) -> Records:
    patients = pd.DataFrame([{"patient_id": "P", "indication": "depression", "sud_history": sud,
                              "treatment_start": "2026-09-01", "planned_dose_mg_per_kg": 0.5,
                              "planned_interval_days": 14}])
    n = len(routes)
    sessions = pd.DataFrame({
        "patient_id": ["P"] * n,
        "session_at": pd.date_range("2026-09-01 09:00", periods=n, freq="7D", tz="UTC"),
        "route": list(routes),
        "dose_mg": [35.0 if r == "iv" else 56.0 for r in routes],
        "weight_kg": [70.0] * n,
        "dose_increase_request": list(requests),
        "early_request": [False] * n,
        "sbp_pre": [120] * n, "sbp_post": [140] * n,
        "side_effects": ["nausea:mild", None, "dizziness:severe;nausea:moderate", None][:n],
    })
    checkins = pd.DataFrame({
        "patient_id": ["P"] * 5,
        "reported_at": pd.date_range("2026-09-02 10:00", periods=5, freq="7D", tz="UTC"),
        "craving": [1, 1, 1, 4, 6],
        "secrecy": [0, 0, 1, 2, 3],
        "phq9": [20, 15, 12, 9, 8],
    })
    return Records.of(patients, sessions, checkins)


def test_every_chart_in_order_on_one_time_axis():
    specs = patient_chart_specs(_records(), "P", tz=TZ)
    assert [s.key for s in specs] == KEYS
    assert len({s.x_range for s in specs}) == 1
    assert specs[0].x_range == (dt.date(2026, 9, 1), dt.date(2026, 9, 30))
    assert all(s.levels == specs[0].levels for s in specs)


def test_thresholds_are_the_engines_for_this_patient():
    rules = load_rules()
    plain = {s.key: s for s in patient_chart_specs(_records(sud=False), "P", tz=TZ)}
    sud = {s.key: s for s in patient_chart_specs(_records(sud=True), "P", tz=TZ)}
    high = [b for b in plain["craving"].bands if b.role == "alert"][0]
    high_sud = [b for b in sud["craving"].bands if b.role == "alert"][0]
    assert high.y0 == rules.craving_high
    assert high_sud.y0 == pytest.approx(rules.craving_high * rules.sud_sensitivity)
    # ... said in the whole numbers a patient answers in: 7 x 0.75 = 5.25 is "6 or more", not "5.25+"
    lowered = math.ceil(rules.craving_high * rules.sud_sensitivity)
    assert high_sud.label == f"High: {lowered} or more" and f"High craving: {lowered} or more." in sud["craving"].note
    assert [line.y for line in plain["sds"].lines] == [rules.sds_threshold]
    assert [line.label for line in plain["sds"].lines] == [f"Clinic threshold {rules.sds_threshold:g}"]
    # Lowered for a history of substance use disorder, the line names both (it said "Clinic threshold 3" at a clinic's 4)
    lowered_sds = rules.sds_threshold * rules.sud_sensitivity
    assert [line.y for line in sud["sds"].lines] == [pytest.approx(lowered_sds)]
    assert [line.label for line in sud["sds"].lines] == [
        f"Threshold {lowered_sds:g} (clinic {rules.sds_threshold:g}, lowered for SUD history)"]
    assert plain["dose"].lines[0].y == 0.5 and plain["dose"].lines[0].role == "plan"


def test_heatmap_holds_the_twelve_signs_with_their_seed_passages():
    heat = {s.key: s for s in patient_chart_specs(_records(), "P", tz=TZ)}["warning_signs"].heatmap
    assert heat.y == tuple(w.label for w in warning_signs())
    assert len(heat.z) == len(WARNING_SIGNS) and all(len(row) == 5 for row in heat.z)
    assert heat.z[WARNING_SIGNS.index("secrecy")] == (0.0, 0.0, 1.0, 2.0, 3.0)
    assert warning_signs()[0].quotation in heat.row_notes[0]
    assert "“Is Ketamine Addictive?”" in heat.row_notes[0]  # the document's title, not its file name alone (browser review)
    assert heat.cell_text[0][4].startswith("Severely")
    # the hover dates a cell as the rest of the page does ("5 Oct 2026") and names the passage as the reasons do, not
    # "05 Oct 2026 ... Seed:" (clinician's second browser review)
    from dashboard.plotly_charts import figure

    template = figure({s.key: s for s in patient_chart_specs(_records(), "P", tz=TZ)}["warning_signs"]).data[0]
    assert "%{x|%-d %b %Y}" in template.hovertemplate and "Source passage: " in template.hovertemplate
    assert "Seed" not in template.hovertemplate
    by_key = {s.key: s for s in patient_chart_specs(_records(), "P", tz=TZ)}
    assert figure(by_key["dose"]).layout.hoverlabel.namelength == -1
    # before and after dosing of one session are hovered together, not the nearest point alone (SpO₂ before was hidden)
    assert {key: figure(by_key[key]).layout.hovermode for key in ("heart_rate", "blood_pressure", "dose")} == {
        "heart_rate": "x unified", "blood_pressure": "x unified", "dose": "closest"}


def test_the_warning_sign_grid_prints_not_at_all_as_0_and_leaves_an_unanswered_cell_empty():
    """'Not at all' and 'not answered' differed only by a faint grey fill (accessibility review: 1.6:1)."""
    from dashboard.plotly_charts import figure

    records = _records()
    records.checkins.loc[records.checkins.index[1], "secrecy"] = None  # not answered at the second check-in
    spec = {s.key: s for s in patient_chart_specs(records, "P", tz=TZ)}["warning_signs"]
    grid = figure(spec).data[0]
    row = WARNING_SIGNS.index("secrecy")
    assert list(grid.text[row]) == ["0", "", "1", "2", "3"]


def test_requests_are_marked_where_the_patient_asked():
    dose = {s.key: s for s in patient_chart_specs(_records(), "P", tz=TZ)}["dose"]
    value, asked_more, _ = dose.series
    assert value.y == pytest.approx((0.5,) * 4)
    assert asked_more.x == (dt.date(2026, 9, 8), dt.date(2026, 9, 22))


def test_a_session_where_the_patient_asked_both_ways_shows_both_marks():
    """Both request marks sit on the dose; the earlier-session one is open (and drawn larger) so the other shows inside."""
    from dashboard.plotly_charts import figure

    records = _records()
    records.sessions["early_request"] = records.sessions["dose_increase_request"]
    specs = {s.key: s for s in patient_chart_specs(records, "P", tz=TZ)}
    _, asked_more, asked_early = specs["dose"].series
    assert asked_more.x == asked_early.x and asked_more.y == asked_early.y  # the same points ...
    assert not asked_more.symbol.endswith("-open") and asked_early.symbol.endswith("-open")  # ... one filled, one open
    early_marker = {t.name: t.marker for t in figure(specs["dose"]).data}["Patient asked for an earlier session"]
    more_marker = {t.name: t.marker for t in figure(specs["dose"]).data}["Patient asked for a higher dose"]
    assert early_marker.size > more_marker.size
    assert specs["interval"].series[-1].symbol.endswith("-open")  # beside the filled "early" flag there too


def test_fixed_dose_route_gets_its_own_chart_in_mg():
    specs = patient_chart_specs(_records(routes=("iv", "iv", "intranasal", "intranasal")), "P", tz=TZ)
    by_key = {s.key: s for s in specs}
    assert by_key["dose"].y_label == "Dose (mg/kg)" and len(by_key["dose"].series[0].x) == 2
    assert by_key["dose_mg"].y_label == "Dose (mg)" and by_key["dose_mg"].series[0].y == (56.0, 56.0)


def test_side_effects_are_one_mark_per_effect_and_session_by_severity():
    side = {s.key: s for s in patient_chart_specs(_records(), "P", tz=TZ)}["side_effects"]
    counts = {s.name: len(s.x) for s in side.series}
    assert counts == {"Mild": 1, "Moderate": 1, "Severe": 1}
    assert set(side.y_categories) == {"Nausea", "Dizziness"}


def test_a_date_range_keeps_only_its_points():
    specs = patient_chart_specs(_records(), "P", tz=TZ, date_from=dt.date(2026, 9, 10), date_to=dt.date(2026, 9, 20))
    craving = {s.key: s for s in specs}["craving"].series[0]
    assert craving.x == (dt.date(2026, 9, 16),)
    assert all(s.x_range == (dt.date(2026, 9, 10), dt.date(2026, 9, 20)) for s in specs)


def test_a_session_without_a_vital_sign_breaks_its_line_on_screen_and_in_print():
    """Joined across, a session with no blood pressure was invisible on the chart (clinician's browser pass)."""
    import matplotlib.pyplot as plt

    from dashboard.plotly_charts import figure
    from ketawatch.exports.figures import _draw_series

    rec = _records()
    rec.sessions.loc[2, ["sbp_pre", "sbp_post"]] = math.nan
    bp = {s.key: s for s in patient_chart_specs(rec, "P", tz=TZ)}["blood_pressure"]
    systolic = next(s for s in bp.series if s.name == "Systolic before")
    assert len(systolic.x) == 4 and math.isnan(systolic.y[2]) and systolic.y[:2] == (120.0, 120.0)
    assert next(s for s in bp.series if s.name == "Diastolic before").x == ()  # none recorded: no series at all
    trace = next(t for t in figure(bp).data if t.name == "Systolic before")
    assert math.isnan(trace.y[2]) and not trace.connectgaps  # plotly leaves a gap at a missing value
    fig, ax = plt.subplots()
    _draw_series(ax, systolic, 0.5)
    drawn = ax.lines[0].get_ydata()
    assert math.isnan(drawn[2]) and len(drawn) == 4  # matplotlib breaks its line at NaN
    plt.close(fig)


def test_a_patient_without_records_gives_empty_charts():
    records = Records.of(pd.DataFrame([{"patient_id": "E", "indication": "ptsd", "sud_history": True,
                                        "treatment_start": "2026-01-01"}]))
    specs = patient_chart_specs(records, "E", tz=TZ)
    assert all(s.is_empty for s in specs)
    assert record_span(records, "E", tz=TZ) is None


@settings(max_examples=60, deadline=None)
@given(levels=st.lists(st.sampled_from(["green", "amber", "red"]), min_size=1, max_size=20),
       gaps=st.lists(st.integers(1, 9), min_size=20, max_size=20))
def test_level_periods_tile_the_range_without_overlap(levels, gaps):
    start = dt.date(2026, 1, 1)
    days, day = [], start
    for gap in gaps[: len(levels)]:
        days.append(day)
        day += dt.timedelta(days=gap)
    frame = pd.DataFrame({"date": days, "level": levels})
    end = days[-1] + dt.timedelta(days=5)
    periods = level_periods(frame, start, end)
    assert periods[0].start == start and periods[-1].end == end
    for a, b in zip(periods, periods[1:]):
        assert b.start == a.end + dt.timedelta(days=1)
        assert a.level != b.level
    for d, level in zip(days, levels):
        assert [p.level for p in periods if p.start <= d <= p.end] == [level]
    assert all(isinstance(p, LevelPeriod) for p in periods)


@pytest.mark.parametrize("weeks", [4, 52])
def test_the_newest_and_oldest_points_sit_inside_the_plotly_axis_with_room_for_their_marker(weeks):
    """Half a day of room was about a pixel on a year's chart: the newest dose was cut in half at the edge."""
    from dashboard.plotly_charts import figure

    n = weeks
    patients = pd.DataFrame([{"patient_id": "P", "indication": "depression", "sud_history": False,
                              "treatment_start": "2025-11-01", "planned_dose_mg_per_kg": 0.5, "planned_interval_days": 7}])
    sessions = pd.DataFrame({"patient_id": ["P"] * n, "route": ["iv"] * n, "dose_mg": [35.0] * n, "weight_kg": [70.0] * n,
                             "session_at": pd.date_range("2025-11-03 15:30", periods=n, freq="7D", tz="UTC")})
    records = Records.of(patients, sessions, pd.DataFrame({"patient_id": [], "reported_at": [], "craving": []}))
    spec = {s.key: s for s in patient_chart_specs(records, "P", tz=TZ)}["dose"]
    fig = figure(spec)
    lo, hi = (pd.Timestamp(v) for v in fig.layout.xaxis.range)
    xs = pd.to_datetime(pd.Series([x for trace in fig.data for x in trace.x]))
    room = (hi - lo) * 0.015  # a marker's radius on a 900-pixel-wide chart, with some to spare
    assert lo + room <= xs.min() and xs.max() <= hi - room, (lo, xs.min(), xs.max(), hi)


def test_reference_lines_are_named_in_the_legend_not_over_the_points():
    """'Clinic threshold 4' covered the two newest SDS answers at the right edge (clinician review); moved to the left,
    'Plan 0.50 mg/kg' covered the induction doses and a level's name (browser check). The PDF names them in its legend."""
    from dashboard.plotly_charts import LINE_STYLES, figure

    specs = [spec for spec in patient_chart_specs(_records(sud=True), "P", tz=TZ) if spec.lines]
    assert {spec.key for spec in specs} >= {"craving", "dose", "interval", "sds", "phq9"}
    for spec in specs:
        fig = figure(spec)
        labels = [line.label for line in spec.lines]
        keys = {trace.name: trace for trace in fig.data if trace.name in labels}
        assert sorted(keys) == sorted(labels) and fig.layout.showlegend
        for line in spec.lines:
            assert (keys[line.label].line.color, keys[line.label].line.dash) == LINE_STYLES[line.role]
        assert not [a for a in fig.layout.annotations if a.text in labels]
        # two lines of one chart are told apart by how they are drawn, not by height alone (PHQ-9's response and
        # remission were both green and dotted; browser check)
        assert len({LINE_STYLES[line.role] for line in spec.lines}) == len(spec.lines), spec.key


def test_no_level_shading_behind_the_warning_sign_grid_where_an_empty_cell_would_show_it_as_an_answer():
    from dashboard.plotly_charts import figure

    records = _records()
    specs = {s.key: s for s in patient_chart_specs(records, "P", tz=TZ)}
    assert any(p.level != "green" for p in specs["warning_signs"].levels), "the fixture has an amber or red period"
    level_rects = lambda fig: [s for s in fig.layout.shapes if s.type == "rect" and s.yref == "paper"]  # noqa: E731
    assert level_rects(figure(specs["craving"])), "other charts keep their shading"
    assert not level_rects(figure(specs["warning_signs"]))


class _Unwrapped:
    """A trace's name and hover texts with the line breaks Plotly is given taken out again, to compare the words."""

    def __init__(self, trace):
        self.name, self.hovertext = trace.name, tuple(t.replace("<br>", " ") for t in trace.hovertext or ())


def _unwrapped(trace) -> _Unwrapped:
    return _Unwrapped(trace)


def test_every_mark_says_its_date_and_value_in_clinic_words_not_plotlys_raw_pair():
    """Hovering the 5 Oct dose showed '(Oct 5, 2026, 0.5952381)': no unit, no mg or weight, no word that the patient had
    asked for more (clinician's browser review). Every point of every chart now says the date and value in words."""
    from dashboard.plotly_charts import figure

    specs = patient_chart_specs(_records(routes=("iv", "iv", "iv", "intranasal")), "P", tz=TZ)
    for spec in (s for s in specs if s.heatmap is None):
        for trace in figure(spec).data:
            if trace.hoverinfo == "skip":  # a reference line's legend entry: no point of its own
                continue
            assert trace.hoverinfo == "text+name", (spec.key, trace.name)
            assert len(trace.hovertext) == len(trace.x), (spec.key, trace.name)
            assert all(len(line) <= 90 for text in trace.hovertext for line in text.split("<br>")), trace.name
            for day, text in zip(trace.x, trace.hovertext):
                assert text.startswith(f"{day.day} {day:%b %Y} · "), (spec.key, trace.name, text)
    by_key = {s.key: s for s in specs}
    dose = {t.name: _unwrapped(t) for t in figure(by_key["dose"]).data}
    asked = "8 Sep 2026 · 0.50 mg/kg (35 mg, 70.0 kg) · patient asked for a higher dose"
    assert dose["Dose (mg/kg)"].hovertext[1] == asked and dose["Patient asked for a higher dose"].hovertext == (asked,)
    assert dose["Dose (mg/kg)"].hovertext[0] == "1 Sep 2026 · 0.50 mg/kg (35 mg, 70.0 kg)"
    fixed = {t.name: _unwrapped(t) for t in figure(by_key["dose_mg"]).data}["Dose (mg)"]
    assert fixed.hovertext == ("22 Sep 2026 · 56 mg intranasal · patient asked for a higher dose",)
    # a session without a weight of its own says its mg/kg rests on the last one recorded (code review)
    unweighed = _records(routes=("iv", "iv", "iv", "intranasal"))
    unweighed.sessions.loc[1, "weight_kg"] = float("nan")
    spec = {s.key: s for s in patient_chart_specs(unweighed, "P", tz=TZ)}["dose"]
    assert {t.name: _unwrapped(t) for t in figure(spec).data}["Dose (mg/kg)"].hovertext[1] == (
        "8 Sep 2026 · 0.50 mg/kg (35 mg, 70.0 kg, not weighed at this session: the last weight recorded) · patient "
        "asked for a higher dose")
    craving = {t.name: t for t in figure(by_key["craving"]).data}["Craving"]
    assert craving.hovertext[-1] == "30 Sep 2026 · craving 6 of 10"
    # the engine's PHQ-9 response and reliable change were computed and shown nowhere (code review)
    phq9 = {t.name: _unwrapped(t) for t in figure(by_key["phq9"]).data}["PHQ-9 total"]
    assert phq9.hovertext[1:4] == ("9 Sep 2026 · PHQ-9 15 of 27 (moderately severe)",
                                   "16 Sep 2026 · PHQ-9 12 of 27 (moderate) · reliably better than the first (20)",
                                   "23 Sep 2026 · PHQ-9 9 of 27 (mild) · response · reliably better than the first (20)")
    from ketawatch.charts import _phq9_words

    assert _phq9_words({"phq9": 4.0, "phq9_band": "minimal", "phq9_remission": True, "phq9_response": True,
                        "phq9_baseline": 20.0, "phq9_change": "improved"}) == (
        "PHQ-9 4 of 27 (minimal) · remission · reliably better than the first (20)")  # remission says more than response
    # a level's reasons in few words: in full they ran off both edges on one line (clinician's second review)
    level = figure(by_key["levels"]).data[0]
    assert all(len(text) < 200 and "; " not in text for text in level.hovertext), level.hovertext
    assert [text for text in level.hovertext if ": " in text], "the fixture has a level with reasons"


def test_reference_lines_are_drawn_under_the_points_and_over_the_grid():
    """At normal zoom the dashed '20% above plan' line hid the orange 'asked for a higher dose' triangle on it
    (clinician's browser review): Plotly drew the line above the traces."""
    from dashboard.plotly_charts import figure

    records = _records()
    records.sessions.loc[1, "dose_mg"] = 42.0  # 0.60 mg/kg: on the 20% line of a 0.50 mg/kg plan
    spec = {s.key: s for s in patient_chart_specs(records, "P", tz=TZ)}["dose"]
    assert 0.6 in spec.series[1].y and [line.y for line in spec.lines] == pytest.approx([0.5, 0.6])
    for one in (s for s in patient_chart_specs(_records(sud=True), "P", tz=TZ) if s.lines):
        lines = [shape for shape in figure(one).layout.shapes if shape.type == "line"]
        assert len(lines) == len(one.lines), one.key
        # "between": under the traces, over the grid; a shape on "paper" is drawn under the grid whatever its layer
        assert all(line.layer == "between" and line.xref == "x" for line in lines), one.key


def test_the_printed_charts_draw_their_marks_above_the_reference_lines():
    """The screen drew the '20% above plan' line over the request triangle (clinician's browser review); on paper the
    marks were already above it: this keeps them there."""
    from ketawatch.exports.figures import draw

    spec = {s.key: s for s in patient_chart_specs(_records(), "P", tz=TZ)}["dose"]
    ax = draw(spec).axes[0]
    labels = {line.label for line in spec.lines}
    ref_top = max(a.get_zorder() for a in ax.get_lines() if a.get_label() in labels)
    marks = [a for a in ax.get_lines() if a.get_label() in {s.name for s in spec.series}]
    assert marks and all(a.get_zorder() > ref_top for a in marks)


def test_a_charts_highest_point_and_line_sit_below_the_level_name_not_at_its_top_edge():
    """The 84 mg point sat under 'Amber' at the top edge, and a 14-day bar ran into the 14-day plan line (clinician's
    browser review): every chart without a fixed scale has room above its highest value, and bars start at 0."""
    from dashboard.plotly_charts import figure

    for spec in patient_chart_specs(_records(routes=("iv", "iv", "iv", "intranasal")), "P", tz=TZ):
        if spec.y_range is not None or spec.heatmap is not None or spec.y_categories:
            continue
        values = [v for s in spec.series for v in s.y if v == v] + [line.y for line in spec.lines]
        if not values:
            continue
        low, high = figure(spec).layout.yaxis.range
        assert (high - max(values)) / (high - low) >= 0.2, (spec.key, low, high, values)  # the top fifth is free
        assert low <= min(values), (spec.key, low, values)
        if any(s.style == "bar" for s in spec.series):
            assert low == 0, spec.key
