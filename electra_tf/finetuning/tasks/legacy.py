"""What each fine-tuning kind trains on and how it is scored; the network is
`ElectraTaskModel`, the loop is `electra_tf.finetuning.job`.

Kinds: classification (softmax cross-entropy), regression (squared error),
tagging (cross-entropy over labelled word-pieces only), span (mean of the
start and end cross-entropies, plus the no-answer classifier's sigmoid
cross-entropy for SQuAD 2.0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from electra_tf import metrics
from electra_tf.finetuning.data import IGNORE


def loss(kind: str, labels: dict, outputs: dict) -> tf.Tensor:
    """Mean loss over the batch (over labelled tokens for tagging)."""
    if kind == "classification":
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels["label_ids"], tf.cast(outputs["logits"], tf.float32)
            )
        )
    if kind == "regression":
        predictions = tf.cast(outputs["logits"][:, 0], tf.float32)
        return tf.reduce_mean(tf.square(predictions - labels["label"]))
    if kind == "tagging":
        label_ids = labels["label_ids"]
        weights = tf.cast(label_ids != IGNORE, tf.float32)
        per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(
            tf.maximum(label_ids, 0), tf.cast(outputs["logits"], tf.float32)
        )
        return tf.reduce_sum(per_token * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)
    if kind == "span":
        total = 0.5 * (
            tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels["start_positions"], tf.cast(outputs["start_logits"], tf.float32)
                )
            )
            + tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels["end_positions"], tf.cast(outputs["end_logits"], tf.float32)
                )
            )
        )
        if "null_logit" in outputs:
            total += tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(
                    tf.cast(labels["is_impossible"], tf.float32),
                    tf.cast(outputs["null_logit"], tf.float32),
                )
            )
        return total
    raise ValueError(f"unknown task kind {kind!r}")


def score(
    info: dict[str, Any], outputs: dict[str, np.ndarray], labels: dict[str, np.ndarray]
) -> dict[str, float]:
    """Metrics for a classification, regression or tagging eval split."""
    kind = info["kind"]
    if kind == "classification":
        predicted = outputs["logits"].argmax(-1)
        gold = labels["label_ids"]
        result = {"accuracy": metrics.accuracy(gold, predicted)}
        if len(info["labels"]) == 2:
            result["f1"] = metrics.binary_f1(gold, predicted)
            result["mcc"] = metrics.matthews_corrcoef(gold, predicted)
        return result
    if kind == "regression":
        predicted, gold = outputs["logits"][:, 0], labels["label"]
        return {
            "pearson": metrics.pearson(gold, predicted),
            "spearman": metrics.spearman(gold, predicted),
        }
    if kind == "tagging":
        tags = info["labels"]
        predicted = outputs["logits"].argmax(-1)
        gold_sentences, predicted_sentences = [], []
        for gold_row, predicted_row in zip(labels["label_ids"], predicted):
            keep = gold_row != IGNORE
            gold_sentences.append([tags[i] for i in gold_row[keep]])
            predicted_sentences.append([tags[i] for i in predicted_row[keep]])
        result = metrics.entity_f1(gold_sentences, predicted_sentences)
        keep = labels["label_ids"] != IGNORE
        result["token_accuracy"] = metrics.accuracy(labels["label_ids"][keep], predicted[keep])
        return result
    raise ValueError(f"score() does not handle kind {kind!r}; SQuAD uses electra_tf.squad")
