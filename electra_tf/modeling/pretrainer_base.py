"""What the pre-training objectives share on top of the engine's `StepModel`:
loss normalisers (masked and real tokens), inference `call`, the held-out
hidden-state spread, and standalone towers to save beside each checkpoint."""

from __future__ import annotations

import tensorflow as tf

from electra_tf.modeling.step_model import StepModel


class PretrainerBase(StepModel):
    """A pre-training objective. A subclass also defines `export_towers()`:
    the standalone models written beside each checkpoint, by directory name."""

    EVAL_ONLY_METRICS = ("hidden_spread",)
    REAL_TOKENS = "num_tokens"

    def _normalizers(self, data) -> dict:
        return {
            "num_masked": tf.reduce_sum(tf.cast(data["masked_lm_weights"], tf.float32)),
            "num_tokens": tf.reduce_sum(tf.cast(data["input_mask"], tf.float32)),
        }

    def call(self, inputs, training=False):
        seed = tf.constant([0, self.seed], tf.int32)
        return self._forward(inputs, self._normalizers(inputs), seed, training)


def hidden_spread(hidden: tf.Tensor, token_weights: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Sums for the spread of hidden states across the real tokens of a batch.

    A collapsed encoder maps every token to nearly the same vector; this
    measures how far that has gone, scale-free: spread^2 = E||h - E[h]||^2 /
    E||h||^2 over real tokens, 1 for uncorrelated states, 0 for constant ones.

    Args:
        hidden: float [B, L, H] final hidden states.
        token_weights: float [B, L], 1 for real tokens.

    Returns:
        (spread of this batch, number of real tokens it covers).
    """
    hidden = tf.cast(hidden, tf.float32)
    w = tf.cast(token_weights, tf.float32)[:, :, None]
    count = tf.reduce_sum(w)
    mean = tf.math.divide_no_nan(tf.reduce_sum(hidden * w, axis=[0, 1]), count)
    centred = tf.reduce_sum(tf.square(hidden - mean) * w)
    total = tf.reduce_sum(tf.square(hidden) * w)
    return tf.sqrt(tf.math.divide_no_nan(centred, total)), count
