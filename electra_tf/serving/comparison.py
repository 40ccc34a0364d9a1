"""How an edge model is compared with the SavedModel it came from.

The TFLite id model (`tflite_export.parity_report`) and the MediaPipe
classifier (`mediapipe.agreement_report`) are both judged the same way:
the reference outputs in batches, then agreement of the predicted labels,
the largest output gap, accuracy on gold labels when the data has them,
file size and per-example latency on the device runtime.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

BATCH = 256


def in_batches(fn: Callable[[int, int], np.ndarray], count: int, batch: int = BATCH) -> np.ndarray:
    """`fn(start, stop)` over [0, count) in slices of `batch`, concatenated.

    >>> in_batches(lambda a, b: np.arange(a, b), 5, batch=2).tolist()
    [0, 1, 2, 3, 4]
    """
    return np.concatenate([fn(i, min(i + batch, count)) for i in range(0, count, batch)])


def comparison_report(
    path: str,
    edge: np.ndarray,
    reference: np.ndarray,
    seconds: Sequence[float],
    output: str,
    gold: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    subsets: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The report of an edge model at `path` against the reference.

    Args:
        path: The edge model file (its size is reported).
        edge: [examples, classes] outputs of the edge model.
        reference: The same outputs from the SavedModel.
        seconds: Per-example latency of the edge runtime.
        output: What the outputs are ("logit" or "probability"), used in the
            name of the largest-gap field (`max_abs_<output>_diff`).
        gold: The gold label names, when the data has them.
        labels: The model's label names, in output order.
        subsets: Named boolean masks over the examples; each adds
            `<name>_examples`, `<name>_label_agreement` and
            `<name>_max_abs_<output>_diff`.
    """
    agree = edge.argmax(-1) == reference.argmax(-1)
    gap = np.abs(edge - reference).max(-1)
    ms = 1000 * np.asarray(seconds, dtype=np.float64)
    report = {
        "file_bytes": os.path.getsize(path),
        "examples": len(edge),
        "label_agreement": float(np.mean(agree)),
        f"max_abs_{output}_diff": float(np.max(gap)),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }
    for name, mask in (subsets or {}).items():
        report[f"{name}_examples"] = int(mask.sum())
        report[f"{name}_label_agreement"] = float(np.mean(agree[mask]))
        report[f"{name}_max_abs_{output}_diff"] = float(np.max(gap[mask]))
    if gold is not None and labels:
        truth = np.asarray([list(labels).index(label) for label in gold])
        report["accuracy"] = float(np.mean(edge.argmax(-1) == truth))
        report["reference_accuracy"] = float(np.mean(reference.argmax(-1) == truth))
    return report
