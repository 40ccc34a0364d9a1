"""Evaluation metrics for fine-tuning, in NumPy: GLUE's and entity-level F1.

Entity F1 follows conlleval: an entity counts as found only when its type and
both its boundaries match exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def accuracy(labels, predictions) -> float:
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return float(np.mean(labels == predictions)) if labels.size else 0.0


def binary_f1(labels, predictions, positive: int = 1) -> float:
    """F1 of the positive class (GLUE's MRPC/QQP F1)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    tp = np.sum((predictions == positive) & (labels == positive))
    fp = np.sum((predictions == positive) & (labels != positive))
    fn = np.sum((predictions != positive) & (labels == positive))
    return float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0


def matthews_corrcoef(labels, predictions) -> float:
    """Matthews correlation for binary labels (CoLA); 0 when it is undefined."""
    labels, predictions = np.asarray(labels) == 1, np.asarray(predictions) == 1
    tp = float(np.sum(labels & predictions))
    tn = float(np.sum(~labels & ~predictions))
    fp = float(np.sum(~labels & predictions))
    fn = float(np.sum(labels & ~predictions))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / denominator) if denominator else 0.0


def pearson(x, y) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denominator) if denominator else 0.0


def _ranks(x) -> np.ndarray:
    """Ranks with ties given their average rank (as scipy.stats.rankdata)."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    start = 0
    for end in range(1, len(x) + 1):
        if end == len(x) or sorted_x[end] != sorted_x[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0
            start = end
    return ranks


def spearman(x, y) -> float:
    return pearson(_ranks(x), _ranks(y))


def entities(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """(type, start, end) spans in a BIO/IOB2 or BIOES tag sequence.

    An I- tag that does not continue an entity of its type starts a new one
    (conlleval's rule), so ill-formed predictions still score sensibly.
    """
    spans, start, kind = set(), None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        continues = prefix in ("I", "E") and kind == label and start is not None
        if start is not None and not continues:
            spans.add((kind, start, i - 1))
            start, kind = None, None
        if prefix in ("B", "S") or (prefix in ("I", "E") and not continues):
            start, kind = i, label
        if prefix in ("E", "S") and start is not None:
            spans.add((kind, start, i))
            start, kind = None, None
    return spans


def entity_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Micro precision/recall/F1 over exact entity matches, across sentences."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    tp = n_gold = n_pred = 0
    for g, p in zip(gold, predicted):
        if len(g) != len(p):
            raise ValueError(f"sentence lengths differ: {len(g)} gold tags, {len(p)} predicted")
        gold_spans, pred_spans = entities(g), entities(p)
        tp += len(gold_spans & pred_spans)
        n_gold += len(gold_spans)
        n_pred += len(pred_spans)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {"entity_precision": precision, "entity_recall": recall, "entity_f1": f1}
