"""Small vectorised helpers the generator calls thousands of times: bounded values, weighted
draws and string assembly, written to avoid the per-call overhead of their numpy equivalents."""

from __future__ import annotations

import numpy as np


def bounded(values, low, high) -> np.ndarray:
    """`values` limited to [low, high] element by element (np.clip without its Python overhead)."""
    return np.minimum(np.maximum(values, low), high)


def choose(rng: np.random.Generator, options: np.ndarray, weights: np.ndarray, size) -> np.ndarray:
    """Draw `size` items of `options` with probabilities proportional to `weights`."""
    cumulative = np.cumsum(weights, dtype=float)
    picks = np.searchsorted(cumulative / cumulative[-1], rng.random(size), side="right")
    return np.asarray(options)[np.minimum(picks, len(options) - 1)]


def join_nonempty(parts: list[np.ndarray], sep: str, length: int) -> np.ndarray:
    """Join, element by element, the non-empty strings of several equal-length arrays with `sep`."""
    out = np.full(length, "", dtype=object)
    for part in parts:
        part = np.asarray(part, dtype=object)
        has_part = part != ""
        if not has_part.any():
            continue
        has_out = out != ""
        out = np.where(has_part & has_out, out + sep + part, np.where(has_part, part, out))
    return out


def phrases(rng: np.random.Generator, mask: np.ndarray, choices: tuple[str, ...]) -> np.ndarray:
    """One of `choices` where `mask` holds, "" elsewhere."""
    if not mask.any():
        return np.full(len(mask), "", dtype=object)
    picked = np.asarray(choices, dtype=object)[rng.integers(len(choices), size=len(mask))]
    return np.where(mask, picked, "")
