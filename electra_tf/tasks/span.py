"""Extractive question answering: SQuAD 1.1 and 2.0."""

from __future__ import annotations

import os

import tensorflow as tf

from electra_tf.io_utils import atomic_write_json
from electra_tf.kernels import sparse_softmax_cross_entropy
from electra_tf.modeling.joint_span_head import JointSpanHead
from electra_tf.modeling.span_head import SpanHead
from electra_tf.tasks import squad
from electra_tf.tasks.base import Task, register

NEG = -1e9


# Weight of the answerability loss: the reference's (joint head) and ours before it.
NULL_LOSS_WEIGHT = {"joint": 0.5, "independent": 1.0}
# SQuAD 2.0's default no-answer threshold: "no answer" when the null score is
# above it. The joint head's null score is its answerability logit, and the
# reference evaluates it at -2.75 (google-research/electra,
# configure_finetuning.qa_na_threshold); the independent head's is the null
# logit minus the best span's score, at BERT's 0.
NULL_THRESHOLD = {"joint": -2.75, "independent": 0.0}


def _no_span_at_cls(outputs: dict) -> dict:
    """Rows with no valid span (an empty passage) point at [CLS] (0, 0) with
    score NEG, instead of wherever the masked scores' argmax fell."""
    found = outputs["score"] > NEG
    return dict(
        outputs,
        start_index=tf.where(found, outputs["start_index"], 0),
        end_index=tf.where(found, outputs["end_index"], 0),
        score=tf.where(found, outputs["score"], NEG),
    )


@register
class SpanTask(Task):
    """Extractive QA: the mean of the start and end cross-entropies, plus the
    answerability classifier's sigmoid cross-entropy for SQuAD 2.0. Scored
    with the official EM/F1 after n-best decoding.

    Heads: "joint" (the reference's: the end conditioned on the start, beam
    search, passage mask, answerability from [CLS] and the expected start
    state, loss weight 0.5; `JointSpanHead`) or "independent" (start and end
    logits from one dense layer, a [CLS] no-answer classifier with weight 1;
    `SpanHead`).
    """

    kind = "span"
    always_pair = True
    heads = ("joint", "independent")
    legacy_head = "independent"
    beam_size = 20

    def __init__(self):
        self._eval_data = {}  # (data_dir, split) -> what decoding needs, read once

    def label_spec(self, length):
        names = ("unique_ids", "start_positions", "end_positions", "is_impossible")
        return {name: tf.io.FixedLenFeature([], tf.int64) for name in names}

    def build_head(self, config, num_labels, with_null, dtype, head):
        if head == "joint":
            return JointSpanHead(
                with_null,
                beam_size=self.beam_size,
                hidden_act=config.hidden_act,
                dtype=dtype,
                name="qa_head",
            )
        return SpanHead(
            config.hidden_size,
            with_null,
            config.hidden_act,
            initializer_range=config.initializer_range,
            dtype=dtype,
            name="qa_head",
        )

    def head_outputs(self, head, sequence, features, labels, training):
        if self.head_type != "joint":
            return head(sequence)
        # The passage (segment 1, real tokens) plus [CLS], which stands for "no answer".
        mask = tf.cast(features["input_mask"], tf.float32) * tf.cast(
            features["segment_ids"], tf.float32
        )
        mask += tf.one_hot(0, tf.shape(mask)[1])
        starts = None if labels is None else labels["start_positions"]
        return head(sequence, mask, starts)

    def loss_sum(self, labels, outputs):
        total = 0.5 * (
            sparse_softmax_cross_entropy(labels["start_positions"], outputs["start_logits"])
            + sparse_softmax_cross_entropy(labels["end_positions"], outputs["end_logits"])
        )
        if "null_logit" in outputs:
            total += NULL_LOSS_WEIGHT[self.head_type] * tf.nn.sigmoid_cross_entropy_with_logits(
                tf.cast(labels["is_impossible"], tf.float32),
                tf.cast(outputs["null_logit"], tf.float32),
            )
        return tf.reduce_sum(total)

    def null_threshold(self, given: float | None = None) -> float:
        """The SQuAD 2.0 no-answer threshold: `given`, else the head's default."""
        return NULL_THRESHOLD[self.head_type] if given is None else given

    def score(self, outputs, labels, ctx):
        version_2 = ctx.info["squad"]["version_2"]
        key = (ctx.data_dir, ctx.split)
        if key not in self._eval_data:
            self._eval_data[key] = squad.load_eval_data(ctx.data_dir, ctx.split, version_2)
        examples, features, gold = self._eval_data[key]
        common = dict(
            n_best_size=ctx.n_best_size,
            max_answer_length=ctx.max_answer_length,
            lower_case=ctx.info["lower_case"],
            version_2=version_2,
            null_score_diff_threshold=self.null_threshold(ctx.null_score_diff_threshold),
        )
        if self.head_type == "joint":
            beams = {k: outputs[k] for k in squad.BEAM_OUTPUTS}
            predictions, _ = squad.decode_joint(
                examples, features, labels["unique_ids"], beams, outputs.get("null_logit"), **common
            )
        else:
            predictions, _ = squad.decode(
                examples,
                features,
                labels["unique_ids"],
                outputs["start_logits"],
                outputs["end_logits"],
                outputs.get("null_logit"),
                **common,
            )
        atomic_write_json(os.path.join(ctx.model_dir, f"{ctx.split}_predictions.json"), predictions)
        return squad.evaluate(gold, predictions, version_2)

    def serving_outputs(self, raw, inputs, module):
        """The best passage span with end >= start and at most max_answer_length pieces."""
        if self.head_type == "joint":
            return self._best_beam(raw, inputs, module)
        start, end = raw["start_logits"], raw["end_logits"]
        length = tf.shape(start)[1]
        ids = inputs["input_ids"]
        in_passage = (
            (inputs["segment_ids"] == 1) & (inputs["input_mask"] == 1) & (ids != module.sep_id)
        )
        start = tf.where(in_passage, start, NEG)
        end = tf.where(in_passage, end, NEG)
        scores = start[:, :, None] + end[:, None, :]
        upper = tf.minimum(module.max_answer_length - 1, length)  # band_part wants <= length
        band = tf.linalg.band_part(tf.ones([length, length]), 0, upper)
        scores = tf.where(band[None] > 0, scores, 2 * NEG)
        flat = tf.reshape(scores, [tf.shape(scores)[0], -1])
        best = tf.argmax(flat, -1, output_type=tf.int32)
        outputs = _no_span_at_cls(
            {
                "start_index": best // tf.maximum(length, 1),
                "end_index": best % tf.maximum(length, 1),
                "score": tf.gather(flat, best, batch_dims=1),
            }
        )
        if module.version_2:
            null = raw["null_logit"]
            outputs["null_score"] = null
            outputs["has_answer"] = null - outputs["score"] <= module.null_threshold
        return outputs

    def _best_beam(self, raw, inputs, module):
        """The best (start, end) of the beams; has_answer: answerability logit <= 0."""
        starts = tf.cast(raw["start_top_index"], tf.int32)[:, :, None]  # [B, K, 1]
        ends = tf.cast(raw["end_top_index"], tf.int32)  # [B, K, K]
        scores = raw["start_top_log_probs"][:, :, None] + raw["end_top_log_probs"]
        in_passage = (
            (inputs["segment_ids"] == 1)
            & (inputs["input_mask"] == 1)
            & (inputs["input_ids"] != module.sep_id)
        )
        start_ok = tf.gather(in_passage, starts[:, :, 0], batch_dims=1)[:, :, None]
        end_ok = tf.gather(in_passage, tf.reshape(ends, [tf.shape(ends)[0], -1]), batch_dims=1)
        end_ok = tf.reshape(end_ok, tf.shape(ends))
        valid = start_ok & end_ok & (ends >= starts) & (ends - starts < module.max_answer_length)
        flat = tf.reshape(tf.where(valid, scores, 2 * NEG), [tf.shape(scores)[0], -1])
        best = tf.argmax(flat, -1, output_type=tf.int32)
        beam = tf.shape(ends)[2]
        outputs = {
            "start_index": tf.gather(starts[:, :, 0], best // beam, batch_dims=1),
            "end_index": tf.gather(tf.reshape(ends, tf.shape(flat)), best, batch_dims=1),
            "score": tf.gather(flat, best, batch_dims=1),
        }
        outputs = _no_span_at_cls(outputs)
        if module.version_2:
            outputs["null_score"] = raw["null_logit"]
            outputs["has_answer"] = raw["null_logit"] <= module.null_threshold
        return outputs

    def text_outputs(self, outputs, passage, module):
        """Cuts the answer out of the passage's own bytes with the tokenizer's offsets."""
        text_b, (starts, ends), first_length = passage
        passage_start = tf.cast(first_length, tf.int32) + 2  # [CLS] question [SEP]
        # One column at least: a batch of empty passages has no offsets at all.
        starts = tf.pad(starts.to_tensor(0), [[0, 0], [0, 1]])
        ends = tf.pad(ends.to_tensor(0), [[0, 0], [0, 1]])
        width = tf.shape(starts)[1]
        first = tf.clip_by_value(outputs["start_index"] - passage_start, 0, width - 1)
        last = tf.clip_by_value(outputs["end_index"] - passage_start, 0, width - 1)
        begin = tf.gather(starts, first, batch_dims=1)
        stop = tf.gather(ends, last, batch_dims=1)
        answer = tf.strings.substr(text_b, begin, tf.maximum(stop - begin, 0))
        found = outputs["score"] > NEG
        if module.version_2:
            found &= outputs["has_answer"]
        return dict(outputs, answer=tf.where(found, answer, ""))
