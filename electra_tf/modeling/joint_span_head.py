"""The reference's SQuAD head: the end predicted from the start (XLNet-style),
beam search at inference, and an answerability classifier."""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.modeling.initializers import activation

# Logits outside the answer mask get this added, as the reference does.
MASK_PENALTY = 1000.0


@keras.saving.register_keras_serializable(package="electra_tf")
class JointSpanHead(keras.layers.Layer):
    """Start logits, then end logits conditioned on a start position.

    The head of google-research/electra's `finetune/qa/qa_tasks.py` with
    `joint_prediction`, `answerable_classifier` and
    `answerable_uses_start_logits` on (its defaults):

    * answer mask = real passage tokens (segment 1) plus [CLS]; logits
      elsewhere get -1000;
    * start logits = dense(1) on each token;
    * end logits for start s = dense(1)(dense(512, gelu)(concat[h_s, h_e])) on
      each token e. Training conditions on the gold start; inference keeps the
      `beam_size` best starts and, for each, the `beam_size` best ends, as
      log-probabilities;
    * answerability (SQuAD 2.0): dense(1)(dense(512, gelu)(concat[h_[CLS],
      sum_e softmax(start)_e h_e])), a logit that the question is unanswerable.

    Kernels are initialised as TF1's `tf.layers.dense` (Glorot uniform).

    Args:
        with_null: Add the answerability classifier.
        beam_size: Starts kept, and ends kept per start, at inference (20).
        hidden_act: Activation of the 512-wide layers (the reference's GELU).

    Call: `(sequence [B, L, H], answer_mask [B, L], start_positions [B] or
    None)`. With start positions: `start_logits` and `end_logits` [B, L].
    Without: `start_top_log_probs`, `start_top_index` [B, K],
    `end_top_log_probs`, `end_top_index` [B, K, K]. Both add `null_logit` [B]
    with `with_null`.

    Example:
        >>> import numpy as np
        >>> head = JointSpanHead(beam_size=2)
        >>> seq, mask = np.zeros((1, 5, 8), "float32"), np.ones((1, 5), "float32")
        >>> out = head(seq, mask)
        >>> tuple(out["end_top_index"].shape)
        (1, 2, 2)
    """

    def __init__(
        self,
        with_null: bool = False,
        beam_size: int = 20,
        hidden_act: str = "gelu",
        hidden_size: int = 512,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.with_null = with_null
        self.beam_size = beam_size
        self.hidden_act = hidden_act
        self.hidden_size = hidden_size
        dense = dict(kernel_initializer="glorot_uniform", dtype=self.dtype_policy)
        self.start_dense = keras.layers.Dense(1, name="start_logits", **dense)
        self.end_hidden = keras.layers.Dense(
            hidden_size, activation=activation(hidden_act), name="qa_hidden", **dense
        )
        self.end_dense = keras.layers.Dense(1, name="qa_logits", **dense)
        if with_null:
            self.null_hidden = keras.layers.Dense(
                hidden_size, activation=activation(hidden_act), name="answerable_hidden", **dense
            )
            self.null_dense = keras.layers.Dense(1, name="answerable_logit", **dense)

    def build(self, input_shape):
        width = input_shape[-1]
        self.start_dense.build((None, None, width))
        self.end_hidden.build((None, None, 2 * width))
        self.end_dense.build((None, None, self.hidden_size))
        if self.with_null:
            self.null_hidden.build((None, 2 * width))
            self.null_dense.build((None, self.hidden_size))
        self.built = True

    def _end_logits(self, start_states, end_states):
        """end logits [..., L] from start states [..., L, H] and end states [..., L, H]."""
        hidden = self.end_hidden(tf.concat([start_states, end_states], -1))
        return tf.cast(tf.squeeze(self.end_dense(hidden), -1), tf.float32)

    def call(self, sequence, answer_mask, start_positions=None):
        penalty = MASK_PENALTY * (tf.cast(answer_mask, tf.float32) - 1.0)
        length = tf.shape(sequence)[1]
        start_logits = tf.cast(tf.squeeze(self.start_dense(sequence), -1), tf.float32) + penalty
        if start_positions is not None:
            start = tf.gather(sequence, start_positions, batch_dims=1)  # [B, H]
            start = tf.tile(start[:, None], [1, length, 1])
            outputs = {
                "start_logits": start_logits,
                "end_logits": self._end_logits(start, sequence) + penalty,
            }
        else:
            beam = tf.minimum(self.beam_size, length)
            start_log_probs = tf.nn.log_softmax(start_logits)
            top_log_probs, top_index = tf.math.top_k(start_log_probs, k=beam)  # [B, K]
            start = tf.gather(sequence, top_index, batch_dims=1)  # [B, K, H]
            start = tf.tile(start[:, :, None], [1, 1, length, 1])  # [B, K, L, H]
            ends = tf.tile(sequence[:, None], [1, beam, 1, 1])  # [B, K, L, H]
            end_logits = self._end_logits(start, ends) + penalty[:, None]
            end_log_probs, end_index = tf.math.top_k(tf.nn.log_softmax(end_logits), k=beam)
            outputs = {
                "start_top_log_probs": top_log_probs,
                "start_top_index": top_index,
                "end_top_log_probs": end_log_probs,
                "end_top_index": end_index,
            }
        if self.with_null:
            weights = tf.nn.softmax(start_logits)[:, :, None]
            expected_start = tf.reduce_sum(weights * tf.cast(sequence, tf.float32), axis=1)
            features = tf.concat([sequence[:, 0], tf.cast(expected_start, sequence.dtype)], -1)
            null = self.null_dense(self.null_hidden(features))
            outputs["null_logit"] = tf.cast(tf.squeeze(null, -1), tf.float32)
        return outputs

    def get_config(self):
        return {
            **super().get_config(),
            "with_null": self.with_null,
            "beam_size": self.beam_size,
            "hidden_act": self.hidden_act,
            "hidden_size": self.hidden_size,
        }
