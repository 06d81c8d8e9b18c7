"""Evaluation benchmark of the risk engine against simple rules on generated cohorts with known onsets.

Run:  python bench/evaluate_rules.py [--patients 200] [--seeds 3] [--quick]

For each cohort variant (generator parameters varied so that the rules are not fitted to one
generator) it generates the cohort on several seeds (the variant's seed, +100, +200, ...: one
seed's few hundred patients hide rare false alarms) and pools their patients, then replays every
patient's level at every record date and scores, per variant:
- sensitivity: patients who develop dependence and are flagged on or after onset;
- specificity: patients never flagged, among those who never develop it, where a flag
  before onset of a patient who later develops it also counts as a false alarm;
- days from onset to the first flag on or after it (median and 90th percentile).
"Flagged" means red for the red row, amber or red for the amber row. The same figures are
computed for three simple rules a clinic might use instead. It also counts, per variant and
archetype over all its seeds, the look-alike patients (truth archetype in seed_data.cohort.CONFOUNDERS: patterns
that share surface signs with dependence but are not it) who are ever red: DESIGN says none of
them may reach red on its own, so the target is zero everywhere. It also times levels and full
history for 2,000 patients with a year of records.

It also prints two diagnostics that are not targets and change no figure above: red sensitivity
split by how long the records run after onset (a patient whose onset is a few weeks before the
end of the records may show nothing yet), and the median delays of red and the best simple rule
on the patients both flag (the delay figures above are over different sets of patients: each
method's own detections); how far the generator's build-up had gone (from the truth's onset and
midpoint) at each method's first flag and at the delay target; and every simple measure at every
threshold, naming the lowest threshold as specific as red (the comparison "at comparable
specificity": at their usual thresholds the simple rules are less specific than red).

It then checks issue 3's targets per variant and prints a markdown table: red sensitivity >= 0.95
and specificity >= 0.97; red median delay at most a third of the best simple rule's (the simple
rule with mean specificity >= 0.95 and the highest mean sensitivity, compared in the same
variant); amber+ median delay below red's. The worst variant decides.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ketawatch.risk import assess, daily_levels, level_history  # noqa: E402
from seed_data.cohort import CONFOUNDERS, CohortParams, generate_cohort  # noqa: E402
from store.frames import Records  # noqa: E402
from store.vocabulary import SDS_ITEMS, WARNING_SIGNS  # noqa: E402

TZ = "Europe/London"
END = date(2026, 10, 31)
#: Seeds per variant (the variant's own, then +SEED_STEP, +2*SEED_STEP, ...), pooled per variant.
SEEDS, SEED_STEP = 3, 100


def variants(n_patients: int, quick: bool) -> list[tuple[str, CohortParams]]:
    """Cohort variants: seeds, and the generator's noise, check-in rhythm, onset speed and missingness varied."""
    base = CohortParams(n_patients=n_patients, months=9, end=END, dependence_fraction=0.12, confounder_fraction=0.4)
    out = [
        ("base s1", replace(base, seed=1)),
        ("base s2", replace(base, seed=2)),
        ("noisy", replace(base, seed=3, noise=1.6)),
        ("fortnightly check-ins", replace(base, seed=4, checkin_interval_days=14)),
        ("slow onset", replace(base, seed=5, onset_speed=0.6)),
        ("fast onset", replace(base, seed=6, onset_speed=1.6)),
        ("30% missing", replace(base, seed=7, missing_rate=0.3)),
        ("many look-alikes", replace(base, seed=8, confounder_fraction=0.6, dependence_fraction=0.1)),
    ]
    return out[:2] if quick else out


#: The simple rules a clinic might use instead: (measure, threshold), named "<measure> >= <threshold>".
SIMPLE = (("craving", 7), ("SDS", 4), ("any sign", 2))
#: The same measures at every threshold, for comparing at matched specificity (diagnostics only).
SWEEP = tuple(("SDS", k) for k in range(4, 13)) + tuple(("craving", k) for k in range(5, 11)) + (("any sign", 3),)


def simple_flags(checkins: pd.DataFrame, rules=SIMPLE) -> dict[str, pd.DataFrame]:
    """Dates on which each simple rule fires, e.g. craving >= 7, SDS >= 4, any warning sign >= 2."""
    local = checkins["reported_at"].dt.tz_convert(TZ).dt.tz_localize(None).dt.normalize()
    measures = {
        "craving": checkins["craving"],
        "SDS": checkins[list(SDS_ITEMS)].sum(axis=1, min_count=len(SDS_ITEMS)),
        "any sign": checkins[list(WARNING_SIGNS)].max(axis=1),
    }
    dated = pd.DataFrame({"patient_id": checkins["patient_id"], "date": local})
    return {f"{m} >= {k}": dated[(measures[m] >= k).fillna(False).to_numpy()] for m, k in rules}


def delays(flags: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """Days from onset to the first flag on or after it, per dependent patient flagged after onset."""
    onset = pd.to_datetime(truth.set_index("patient_id")["dependence_onset"]).dropna()
    after = flags.merge(onset.rename("onset").rename_axis("pid").reset_index(), left_on="patient_id", right_on="pid")
    after = after[after["date"] >= after["onset"]]
    return (after.groupby("patient_id")["date"].min() - onset).dropna().dt.days


def follow_up(records: Records, truth: pd.DataFrame) -> pd.Series:
    """Days from onset to the patient's last record (check-in or session), per dependent patient."""
    last = pd.concat(
        [
            pd.DataFrame({"patient_id": records.checkins["patient_id"], "at": records.checkins["reported_at"]}),
            pd.DataFrame({"patient_id": records.sessions["patient_id"], "at": records.sessions["session_at"]}),
        ]
    )
    last_day = last["at"].dt.tz_convert(TZ).dt.tz_localize(None).dt.normalize().groupby(last["patient_id"]).max()
    onset = pd.to_datetime(truth.set_index("patient_id")["dependence_onset"]).dropna()
    return (last_day.reindex(onset.index) - onset).dt.days


def score(flags: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Sensitivity, specificity and onset-to-flag delays from (patient_id, date) flag rows."""
    first_flag = flags.groupby("patient_id")["date"].agg(list)
    onset = pd.to_datetime(truth.set_index("patient_id")["dependence_onset"])
    tp, fn, tn, fp, delays = 0, 0, 0, 0, []
    for pid, when in onset.items():
        dates = sorted(first_flag.get(pid, []))
        if pd.isna(when):
            fp, tn = (fp + 1, tn) if dates else (fp, tn + 1)
            continue
        before = [d for d in dates if d < when]
        after = [d for d in dates if d >= when]
        fp, tn = (fp + 1, tn) if before else (fp, tn + 1)
        if after:
            tp += 1
            delays.append((after[0] - when).days)
        else:
            fn += 1
    return {
        "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
        "specificity": tn / (tn + fp) if tn + fp else float("nan"),
        "median_delay": float(np.median(delays)) if delays else float("nan"),
        "p90_delay": float(np.percentile(delays, 90)) if delays else float("nan"),
        "n_dependent": tp + fn,
    }


def lookalikes_red(red: pd.DataFrame, truth: pd.DataFrame) -> dict[str, tuple[int, int, list[str]]]:
    """Per look-alike archetype: (patients ever red, patients of that archetype, their ids)."""
    ever_red = set(red["patient_id"])
    out = {}
    for archetype in CONFOUNDERS:
        ids = truth.loc[truth["archetype"] == archetype, "patient_id"].astype(str)
        hit = sorted(pid for pid in ids if pid in ever_red)
        out[archetype] = (len(hit), len(ids), hit)
    return out


def run_seed(params: CohortParams) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.Series]:
    """One generated cohort: each method's (patient_id, date) flags, the truth and the follow-up after onset,
    with patient ids labelled by seed so that cohorts of several seeds can be pooled."""
    cohort = generate_cohort(params)
    records = Records.of(cohort.patients, cohort.sessions, cohort.checkins)
    levels = daily_levels(records, tz=TZ)
    levels["date"] = pd.to_datetime(levels["date"])
    methods = {
        "KetaWatch red": levels[levels["level"] == "red"][["patient_id", "date"]],
        "KetaWatch amber+": levels[levels["level"].isin(["amber", "red"])][["patient_id", "date"]],
        **simple_flags(records.checkins, SIMPLE + tuple(r for r in SWEEP if r not in SIMPLE)),
    }
    label = lambda ids: ids.astype(str) + f"/s{params.seed}"  # noqa: E731
    methods = {m: flags.assign(patient_id=label(flags["patient_id"])) for m, flags in methods.items()}
    truth = cohort.truth.assign(patient_id=label(cohort.truth["patient_id"]))
    after = follow_up(records, cohort.truth)
    after.index = label(after.index.to_series())
    return methods, truth, after


def evaluate(n_patients: int, quick: bool, n_seeds: int = SEEDS) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Scores per variant (its seeds pooled) and method; per variant and look-alike archetype the patients ever red;
    and per variant and dependent patient the follow-up after onset and each method's delay (NaN: never flagged after onset)."""
    rows, looks, patients = [], [], []
    for name, params in variants(n_patients, quick):
        runs = [run_seed(replace(params, seed=params.seed + SEED_STEP * k)) for k in range(n_seeds)]
        methods = {m: pd.concat([run[0][m] for run in runs], ignore_index=True) for m in runs[0][0]}
        truth = pd.concat([run[1] for run in runs], ignore_index=True)
        per_patient = pd.DataFrame({"follow_up": pd.concat([run[2] for run in runs])})
        dependent = truth.dropna(subset=["dependence_onset"]).set_index("patient_id")
        per_patient["half_build_up"] = (dependent["dependence_midpoint"] - dependent["dependence_onset"]).dt.days
        for method, flags in methods.items():
            rows.append({"variant": name, "method": method, **score(flags, truth)})
            per_patient[method] = delays(flags, truth).reindex(per_patient.index)
        patients.append(per_patient.reset_index(names="patient_id").assign(variant=name))
        for archetype, (n_red, n, ids) in lookalikes_red(methods["KetaWatch red"], truth).items():
            looks.append({"variant": name, "archetype": archetype, "red": n_red, "patients": n, "ids": ids})
    return pd.DataFrame(rows), pd.DataFrame(looks), pd.concat(patients, ignore_index=True)


def lookalike_lines(looks: pd.DataFrame) -> list[str]:
    """One line per variant: look-alike patients ever red, by archetype (target: 0 everywhere)."""
    lines = []
    for variant, group in looks.groupby("variant", sort=False):
        parts = [f"{r.archetype} {r.red}/{r.patients}" for r in group.itertuples()]
        ids = [pid for r in group.itertuples() for pid in r.ids]
        lines.append(f"{variant}: {int(group['red'].sum())} red ({', '.join(parts)})" + (f" [{', '.join(ids[:8])}]" if ids else ""))
    return lines


def timing(repeats: int) -> dict[str, float]:
    """Median seconds for levels (assess) and the full history on 2,000 patients x 12 months."""
    cohort = generate_cohort(CohortParams(n_patients=2000, months=12, end=END, seed=11))
    records = Records.of(cohort.patients, cohort.sessions, cohort.checkins)
    out = {"sessions": len(records.sessions), "checkins": len(records.checkins)}
    for label, fn in (("assess", lambda: assess(records, as_of=END, tz=TZ)), ("history", lambda: level_history(records, tz=TZ))):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        out[label] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=SEEDS, help=f"seeds per variant, pooled (default {SEEDS})")
    parser.add_argument("--quick", action="store_true", help="two variants only, one timing run")
    args = parser.parse_args()
    everything, looks, per_patient = evaluate(args.patients, args.quick, args.seeds)
    results = everything[~everything["method"].isin(SWEPT_RULES)]
    pd.set_option("display.width", 160)
    summary = results.groupby("method", sort=False).agg(
        sensitivity=("sensitivity", "mean"),
        specificity=("specificity", "mean"),
        worst_sensitivity=("sensitivity", "min"),
        worst_specificity=("specificity", "min"),
        median_delay_days=("median_delay", "median"),
        p90_delay_days=("p90_delay", "median"),
    )
    print(f"Per variant ({args.patients} patients x {args.seeds} seeds each, pooled):")
    print(results.round(3).to_string(index=False))
    print("\nLook-alikes ever red, per variant over its seeds (red patients / patients of the archetype; target 0):")
    print("\n".join(lookalike_lines(looks)))
    print("\nSummary over variants (mean; worst; median of the per-variant delays):")
    print(summary.round(3).to_markdown() if hasattr(summary, "to_markdown") and _has_tabulate() else summary.round(3).to_string())
    totals = looks.groupby("archetype", sort=False)[["red", "patients"]].sum()
    print(
        "Look-alikes ever red, all variants: "
        + ", ".join(f"{a} {int(r.red)}/{int(r.patients)}" for a, r in totals.iterrows())
        + f"; total {int(totals['red'].sum())} (target 0)"
    )
    print("\nDiagnostics (not targets; they change no figure above):")
    print("\n".join(diagnostic_lines(results, per_patient)))
    print("\n".join(matched_lines(everything)))
    print("\nIssue 3 targets per variant (markdown):\n")
    print(target_table(results, looks))
    speed = timing(1 if args.quick else 3)
    print(
        f"\nSpeed, 2,000 patients ({speed['sessions']} sessions, {speed['checkins']} check-ins), median of "
        f"{1 if args.quick else 3}: levels {speed['assess']:.2f} s, full history {speed['history']:.2f} s"
    )


TARGET_SENSITIVITY, TARGET_SPECIFICITY, TARGET_DELAY_FRACTION = 0.95, 0.97, 1 / 3
SIMPLE_RULES = tuple(f"{m} >= {k}" for m, k in SIMPLE)
SWEPT_RULES = tuple(f"{m} >= {k}" for m, k in SWEEP if (m, k) not in SIMPLE)


#: Records after onset below which a patient counts as "short follow-up" in the diagnostics.
SHORT_FOLLOW_UP_DAYS = 56


def best_simple_rule(results: pd.DataFrame) -> str:
    """The simple rule with mean specificity >= 0.95 and the highest mean sensitivity (SDS >= 4 if none)."""
    means = results.groupby("method")[["sensitivity", "specificity"]].mean()
    comparable = means.loc[list(SIMPLE_RULES)]
    comparable = comparable[comparable["specificity"] >= 0.95]
    return comparable["sensitivity"].idxmax() if len(comparable) else "SDS >= 4"


def diagnostic_lines(results: pd.DataFrame, per_patient: pd.DataFrame) -> list[str]:
    """Red sensitivity by follow-up after onset, and red vs the best simple rule's median delay on patients both flag."""
    best = best_simple_rule(results)
    short = per_patient["follow_up"] < SHORT_FOLLOW_UP_DAYS
    red = per_patient["KetaWatch red"].notna()
    lines = [
        f"Red sensitivity by records after onset (< {SHORT_FOLLOW_UP_DAYS} days | >= {SHORT_FOLLOW_UP_DAYS} days), "
        f"and median delay (days) of red | {best} | amber+ on the dependent patients flagged by both red and {best}:"
    ]
    for variant, g in per_patient.groupby("variant", sort=False):
        s, r = short[g.index], red[g.index]
        both = g[g["KetaWatch red"].notna() & g[best].notna()]
        lines.append(
            f"{variant}: short {int(r[s].sum())}/{int(s.sum())}, longer {int(r[~s].sum())}/{int((~s).sum())}; "
            f"both flag {len(both)}: {both['KetaWatch red'].median():.1f} | {both[best].median():.1f} | "
            f"{both['KetaWatch amber+'].median():.1f}"
        )
    s = short
    both = per_patient[red & per_patient[best].notna()]
    lines.append(
        f"all variants: short {int(red[s].sum())}/{int(s.sum())}, longer {int(red[~s].sum())}/{int((~s).sum())}; "
        f"both flag {len(both)}: {both['KetaWatch red'].median():.1f} | {both[best].median():.1f} | "
        f"{both['KetaWatch amber+'].median():.1f}"
    )
    # How far the generator's build-up (an S-curve from onset to twice the midpoint) had gone.
    def done(days: pd.Series) -> pd.Series:
        x = (days / (2 * per_patient.loc[days.index, "half_build_up"])).clip(0, 1)
        return 100 * x * x * (3 - 2 * x)

    target_days = per_patient[best].median() * TARGET_DELAY_FRACTION
    lines.append(
        "Build-up done (median %, from the generator's truth) at each method's first flag: "
        + ", ".join(f"{m} {done(per_patient[m].dropna()).median():.0f}%" for m in ("KetaWatch red", "KetaWatch amber+", best))
        + f"; at {target_days:.0f} days after onset (a third of {best}'s median delay): "
        f"{done(pd.Series(target_days, index=per_patient.index)).median():.0f}%"
    )
    at_end = done(per_patient["follow_up"].astype("float64"))
    lines.append(
        "Dependent patients whose build-up had gone at least this far by their last record (the most a rule "
        "that needs it could catch): "
        + ", ".join(f"{p}% {(at_end >= p).mean():.3f}" for p in (25, 50, 75, 90))
    )
    return lines


def matched_lines(everything: pd.DataFrame) -> list[str]:
    """Each simple measure at every threshold, and the lowest threshold as specific as red (mean over variants).

    The targets above compare with the simple rules at their usual thresholds, which are less
    specific than red; raising a threshold until the rule is as specific as red makes it later
    and less sensitive, which is the comparison "at comparable specificity" asks for.
    """
    means = everything.groupby("method", sort=False).agg(
        sensitivity=("sensitivity", "mean"), specificity=("specificity", "mean"), median_delay=("median_delay", "median")
    )
    red = means.loc["KetaWatch red"]
    lines = [
        f"Simple rules at every threshold (mean sensitivity, mean specificity, median of the variants' median delays); "
        f"KetaWatch red: {red['sensitivity']:.3f}, {red['specificity']:.3f}, {red['median_delay']:.0f} d:"
    ]
    for measure in ("SDS", "craving", "any sign"):
        names = sorted((n for n in means.index if n.startswith(f"{measure} >= ")), key=lambda n: float(n.split(">= ")[1]))
        lines.append(
            f"  {measure}: "
            + "; ".join(f"{n.split('>= ')[1]}: {means.loc[n, 'sensitivity']:.3f} {means.loc[n, 'specificity']:.3f} "
                        f"{means.loc[n, 'median_delay']:.0f} d" for n in names)
        )
        matched = [n for n in names if round(means.loc[n, "specificity"], 3) >= round(red["specificity"], 3)]
        if matched:
            m = means.loc[matched[0]]
            lines.append(
                f"    as specific as red: {matched[0]}, sensitivity {m['sensitivity']:.3f}, median delay "
                f"{m['median_delay']:.0f} d (a third: {m['median_delay'] / 3:.0f} d; red {red['median_delay']:.0f} d)"
            )
        else:
            lines.append("    no threshold is as specific as red")
    return lines


def target_table(results: pd.DataFrame, looks: pd.DataFrame | None = None) -> str:
    """Issue 3's targets per variant as a markdown table, with a final row for the worst variant (and look-alikes ever red)."""
    best = best_simple_rule(results)
    by = results.set_index(["variant", "method"])
    lines = [
        f"Best simple rule at comparable specificity: {best}; delay target = 1/3 of its median delay.",
        "",
        "| variant | red sens | red spec | red delay (d) | target delay (d) | amber+ sens | amber+ spec | amber+ delay (d) "
        "| look-alikes red | sens | spec | delay | amber earlier | no look-alike red |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = ("sens", "spec", "delay", "amber", "looks")
    worst = dict.fromkeys(keys, True)
    red_looks = looks.groupby("variant")["red"].sum() if looks is not None else pd.Series(dtype="int64")
    for variant in dict.fromkeys(results["variant"]):
        red, amber, simple = by.loc[(variant, "KetaWatch red")], by.loc[(variant, "KetaWatch amber+")], by.loc[(variant, best)]
        target = simple["median_delay"] * TARGET_DELAY_FRACTION
        ok = {
            "sens": red["sensitivity"] >= TARGET_SENSITIVITY,
            "spec": red["specificity"] >= TARGET_SPECIFICITY,
            "delay": red["median_delay"] <= target,
            "amber": amber["median_delay"] < red["median_delay"],
            "looks": int(red_looks.get(variant, 0)) == 0,
        }
        worst = {k: worst[k] and v for k, v in ok.items()}
        mark = lambda b: "met" if b else "NOT met"  # noqa: E731
        lines.append(
            f"| {variant} | {red['sensitivity']:.3f} | {red['specificity']:.3f} | {red['median_delay']:.0f} | {target:.0f} | "
            f"{amber['sensitivity']:.3f} | {amber['specificity']:.3f} | {amber['median_delay']:.0f} | "
            f"{int(red_looks.get(variant, 0))} | " + " | ".join(mark(ok[k]) for k in keys) + " |"
        )
    total_looks = int(red_looks.sum()) if len(red_looks) else 0
    lines.append(
        f"| **all variants** | | | | | | | | {total_looks} | " + " | ".join("met" if worst[k] else "NOT met" for k in keys) + " |"
    )
    return "\n".join(lines)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
