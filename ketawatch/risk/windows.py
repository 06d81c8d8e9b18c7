"""Per-patient window arithmetic on rows sorted by patient, in numpy, so rules never loop over records.

Every function takes `starts`: for each row, the position of its patient's first row. Windows
count records ending at the current row and never reach into another patient's rows or into the
future, which is what makes the levels causal.
"""

from __future__ import annotations

import numpy as np


def group_starts(codes: np.ndarray) -> np.ndarray:
    """For rows sorted by patient code, the row position where each row's patient begins."""
    n = len(codes)
    is_start = np.ones(n, dtype=bool)
    if n:
        is_start[1:] = codes[1:] != codes[:-1]
    return np.maximum.accumulate(np.where(is_start, np.arange(n), 0)) if n else np.zeros(0, dtype="int64")


def window_count(flags: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """How many of the last `window` rows of the same patient (this one included) are True."""
    n = len(flags)
    cum = np.concatenate(([0], np.cumsum(flags.astype("int64"))))
    idx = np.arange(n)
    lo = np.maximum(idx + 1 - window, starts)
    return cum[idx + 1] - cum[lo]


def recent_window_start(starts: np.ndarray, window: int, day: np.ndarray, max_days: int) -> np.ndarray:
    """First row of each row's window: its patient's last `window` rows that are also at most `max_days` days old.

    Some records come weeks apart (maintenance every 2-6 weeks), so a count of records alone can
    reach back many months; the day limit keeps "recent" recent. Rows must be in time order
    within each patient (`day` non-decreasing), which every feature table is.
    """
    n = len(starts)
    idx = np.arange(n)
    by_count = np.maximum(idx + 1 - window, starts)
    if n == 0:
        return by_count
    # (patient start, day) packed into one sorted key, so one searchsorted finds the oldest row in range
    span = np.int64(int(day.max()) - int(day.min()) + max_days + 2)
    key = starts.astype("int64") * span + (day - int(day.min()) + max_days + 1)
    by_days = np.searchsorted(key, key - max_days, side="left")
    return np.maximum(by_count, by_days)


def count_from(flags: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """How many rows from `lo` up to and including each row are True (`lo` from `recent_window_start`)."""
    cum = np.concatenate(([0], np.cumsum(flags.astype("int64"))))
    return cum[np.arange(len(flags)) + 1] - cum[lo]


def held(flags: np.ndarray, starts: np.ndarray, times: int) -> np.ndarray:
    """True where the condition held on this row and the `times - 1` rows before it, same patient."""
    return window_count(flags, starts, times) >= times


def held_over_days(flags: np.ndarray, starts: np.ndarray, times: int, day: np.ndarray, min_days: int) -> np.ndarray:
    """True where the condition held on at least `times` rows in a row ending here that span at least `min_days` days.

    Check-ins a day apart report nearly the same recall period: "held at 2 check-ins in a row" from answers 12 hours
    apart made a red level (clinical review). One row needs no span.
    """
    n = len(flags)
    idx = np.arange(n)
    run_start = np.maximum(np.maximum.accumulate(np.where(flags, -1, idx)) + 1, starts) if n else idx
    run = idx - run_start + 1
    out = flags.astype(bool) & (run >= times)
    if times > 1 and n:
        out &= day - day[np.minimum(run_start, n - 1)] >= min_days
    return out


def window_count_over_days(flags: np.ndarray, starts: np.ndarray, window: int, times: int, day: np.ndarray,
                           min_days: int) -> np.ndarray:
    """True where at least `times` of the patient's last `window` rows are True and, when more than one is asked
    for, the first and last of them are at least `min_days` days apart (one period reported twice is one report)."""
    count = window_count(flags, starts, window)
    out = count >= times
    n = len(flags)
    if times > 1 and n:
        idx = np.arange(n)
        lo = np.maximum(idx + 1 - window, starts)
        # the first True row at or after each position, and the last at or before it
        next_true = np.minimum.accumulate(np.where(flags, idx, n)[::-1])[::-1]
        first = next_true[lo]
        last = np.maximum.accumulate(np.where(flags, idx, -1))
        safe = np.clip(np.stack([first, last]), 0, n - 1)
        out &= (count >= 1) & (day[safe[1]] - day[safe[0]] >= min_days)
    return out


def carry_forward(mask: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """For each row, the position of the patient's latest row at or before it where `mask` is True, else -1."""
    n = len(mask)
    last = np.maximum.accumulate(np.where(mask, np.arange(n), -1)) if n else np.zeros(0, dtype="int64")
    return np.where(last >= starts, last, -1)


def take(values: np.ndarray, positions: np.ndarray, fill):
    """`values[positions]`, with `fill` where the position is -1."""
    if len(values) == 0:
        return np.full(len(positions), fill, dtype=np.result_type(values.dtype, np.asarray(fill).dtype))
    out = values[np.maximum(positions, 0)]
    return np.where(positions >= 0, out, fill)


def personal_baseline(values: np.ndarray, keys: list[np.ndarray], n_first: int) -> np.ndarray:
    """Median of the first `n_first` recorded values per key, shown from the row where the last of them arrives.

    Before that row the baseline is not yet established (NaN), so nothing later leaks backwards.
    Rows must be in time order within each key.
    """
    n = len(values)
    if n == 0:
        return np.full(0, np.nan)
    group = np.asarray(keys[0], dtype="int64")
    for key in keys[1:]:
        key = np.asarray(key, dtype="int64")
        group = group * (int(key.max()) + 1) + key
    if len(keys) > 1:
        group = np.unique(group, return_inverse=True)[1].reshape(-1)
    valid = ~np.isnan(values)
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    first_of_group = np.searchsorted(sorted_group, sorted_group, side="left")
    cum = np.cumsum(valid[order])
    seen_sorted = cum - np.concatenate(([0], cum))[first_of_group]
    seen = np.empty(n, dtype="int64")
    seen[order] = seen_sorted

    pick = np.flatnonzero(valid & (seen <= n_first))
    picked_group, picked_value = group[pick], values[pick]
    by = np.lexsort((picked_value, picked_group))
    picked_group, picked_value = picked_group[by], picked_value[by]
    n_groups = int(group.max()) + 1
    lo = np.searchsorted(picked_group, np.arange(n_groups), side="left")
    count = np.searchsorted(picked_group, np.arange(n_groups), side="right") - lo
    complete = count >= n_first
    median = np.full(n_groups, np.nan)
    if complete.any() and len(picked_value):
        a = picked_value[np.minimum(lo + (count - 1) // 2, len(picked_value) - 1)]
        b = picked_value[np.minimum(lo + count // 2, len(picked_value) - 1)]
        median = np.where(complete, (a + b) / 2, np.nan)
    return np.where(seen >= n_first, median[group], np.nan)
