"""Sentence (pair) classification: GLUE's SST-2, MNLI, QNLI, RTE, MRPC, QQP, CoLA, ..."""

from __future__ import annotations

import tensorflow as tf

from electra_tf import metrics
from electra_tf.kernels import sparse_softmax_cross_entropy
from electra_tf.modeling.hf_classification_head import HfClassificationHead
from electra_tf.modeling.reference_classification_head import ReferenceClassificationHead
from electra_tf.tasks.base import Task, register


@register
class ClassificationTask(Task):
    """Softmax cross-entropy on [CLS]; accuracy (and F1, MCC for two classes).

    Heads: "reference" (dropout -> dense, google-research/electra's) or "hf"
    (dropout -> dense(hidden, gelu) -> dropout -> dense, Hugging Face's
    `ElectraClassificationHead`: what HF-converted classifiers use, and what
    conversion to HF needs).
    """

    kind = "classification"
    heads = ("reference", "hf")
    legacy_head = "hf"
    single_output = "probabilities"

    def edge_classifier(self, task):
        return not task.get("pair")

    hf_problem_type = "single_label_classification"

    def label_spec(self, length):
        return {"label_ids": tf.io.FixedLenFeature([], tf.int64)}

    def build_head(self, config, num_labels, with_null, dtype, head):
        if head == "reference":
            return ReferenceClassificationHead(
                self.num_outputs(num_labels), dropout=config.dropout, dtype=dtype, name="classifier"
            )
        return HfClassificationHead(
            config.hidden_size,
            self.num_outputs(num_labels),
            dropout=config.dropout,
            hidden_act=config.hidden_act,
            initializer_range=config.initializer_range,
            dtype=dtype,
            name="classifier",
        )

    def loss_sum(self, labels, outputs):
        return tf.reduce_sum(sparse_softmax_cross_entropy(labels["label_ids"], outputs["logits"]))

    def score(self, outputs, labels, ctx):
        predicted = outputs["logits"].argmax(-1)
        gold = labels["label_ids"]
        result = {"accuracy": metrics.accuracy(gold, predicted)}
        if len(ctx.info["labels"]) == 2:
            result["f1"] = metrics.binary_f1(gold, predicted)
            result["mcc"] = metrics.matthews_corrcoef(gold, predicted)
        return result

    def serving_outputs(self, raw, inputs, module):
        logits = raw["logits"]
        label_ids = tf.argmax(logits, -1, output_type=tf.int32)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits, -1),
            "label_ids": label_ids,
            "labels": tf.gather(tf.constant(module.labels), label_ids),
        }
