"""Token tagging: named entities (CoNLL, WNUT), chunks, parts of speech."""

from __future__ import annotations

import tensorflow as tf

from electra_tf import metrics
from electra_tf.kernels import sparse_softmax_cross_entropy
from electra_tf.modeling.tagging_head import TaggingHead
from electra_tf.tasks.base import Task, register
from electra_tf.tasks.info import IGNORE


@register
class TaggingTask(Task):
    """Cross-entropy over the first word-piece of each word (others are IGNORE);
    entity-level F1 (seqeval's conlleval rules) and token accuracy."""

    kind = "tagging"

    def label_spec(self, length):
        return {"label_ids": tf.io.FixedLenFeature([length], tf.int64)}

    def build_head(self, config, num_labels, with_null, dtype, head):
        return TaggingHead(
            num_labels,
            dropout=config.dropout,
            initializer_range=config.initializer_range,
            dtype=dtype,
            name="tagger",
        )

    def count(self, labels):
        return tf.reduce_sum(tf.cast(labels["label_ids"] != IGNORE, tf.float32))

    def loss_sum(self, labels, outputs):
        label_ids = labels["label_ids"]
        weights = tf.cast(label_ids != IGNORE, tf.float32)
        per_token = sparse_softmax_cross_entropy(tf.maximum(label_ids, 0), outputs["logits"])
        return tf.reduce_sum(per_token * weights)

    def score(self, outputs, labels, ctx):
        tags = ctx.info["labels"]
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

    def serving_outputs(self, raw, inputs, module):
        tag_ids = tf.argmax(raw["logits"], -1, output_type=tf.int32)
        return {
            "logits": raw["logits"],
            "tag_ids": tag_ids,
            "tags": tf.gather(tf.constant(module.labels), tag_ids),
            "tokens": tf.gather(module.vocab_table, inputs["input_ids"]),
            "input_mask": inputs["input_mask"],
        }
