"""Sentence-pair regression: STS-B."""

from __future__ import annotations

import tensorflow as tf

from electra_tf import metrics
from electra_tf.tasks.base import register
from electra_tf.tasks.classification import ClassificationTask


@register
class RegressionTask(ClassificationTask):
    """One output on [CLS] (the classification head with one unit), squared error;
    Pearson and Spearman correlation."""

    kind = "regression"
    single_output = "predictions"
    hf_problem_type = "regression"

    def edge_classifier(self, task):
        return False

    def label_spec(self, length):
        return {"label": tf.io.FixedLenFeature([], tf.float32)}

    def num_outputs(self, num_labels):
        return 1

    def loss_sum(self, labels, outputs):
        predictions = tf.cast(outputs["logits"][:, 0], tf.float32)
        return tf.reduce_sum(tf.square(predictions - labels["label"]))

    def score(self, outputs, labels, ctx):
        predicted, gold = outputs["logits"][:, 0], labels["label"]
        return {
            "pearson": metrics.pearson(gold, predicted),
            "spearman": metrics.spearman(gold, predicted),
        }

    def serving_outputs(self, raw, inputs, module):
        return {"predictions": raw["logits"][:, 0]}
