"""Precision / recall / F1 of predicted pairs against true pairs (test helper)."""

from __future__ import annotations

from collections.abc import Iterable


def prf(
    predicted: Iterable[tuple[object, object]], truth: set[tuple[object, object]]
) -> tuple[float, float, float]:
    pred = set(predicted)
    tp = len(pred & truth)
    p = tp / len(pred) if pred else 0.0
    r = tp / len(truth) if truth else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f1
