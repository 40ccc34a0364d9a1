"""Gather/scatter of masked positions and Gumbel-max sampling.

Same semantics as google-research/electra's `pretrain_helpers.py`, written
for static shapes so the step compiles under XLA.
"""

from __future__ import annotations

import tensorflow as tf


def gather_positions(sequence: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """Values at `positions` [B, N] of `sequence` [B, L] or [B, L, D]."""
    return tf.gather(sequence, tf.cast(positions, tf.int32), batch_dims=1)


def scatter_positions(
    sequence: tf.Tensor, updates: tf.Tensor, positions: tf.Tensor, weights: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Writes `updates` [B, N] into `sequence` [B, L] at `positions` [B, N].

    Only slots with `weights > 0` are written (padding slots, which point at
    position 0, are ignored, as in the reference). A position listed twice
    takes the mean of its updates, as the reference does.

    Returns:
        (updated sequence [B, L], int32 mask [B, L] of the written positions).
    """
    length = tf.shape(sequence)[1]
    write = tf.one_hot(tf.cast(positions, tf.int32), length, dtype=tf.int32)  # [B, N, L]
    write *= tf.cast(weights > 0, tf.int32)[:, :, None]
    count = tf.reduce_sum(write, axis=1)  # [B, L]
    summed = tf.reduce_sum(write * tf.cast(updates, tf.int32)[:, :, None], axis=1)
    written = tf.minimum(count, 1)
    value = tf.math.floordiv(summed, tf.maximum(count, 1))
    sequence = tf.cast(sequence, tf.int32)
    return written * value + (1 - written) * sequence, written


def sample_gumbel_max(logits: tf.Tensor, seed: tf.Tensor, temperature: float = 1.0) -> tf.Tensor:
    """Samples ids from softmax(logits / temperature) with the Gumbel-max trick.

    Stateless: the same int32 `seed` [2] gives the same sample, in graph mode,
    under XLA and on every replica (callers fold the replica id into the seed).
    The 1e-9 terms follow the reference implementation.
    """
    logits = tf.stop_gradient(tf.cast(logits, tf.float32)) / temperature
    uniform = tf.random.stateless_uniform(tf.shape(logits), seed=seed, minval=0.0, maxval=1.0)
    gumbel = -tf.math.log(-tf.math.log(uniform + 1e-9) + 1e-9)
    return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)
