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


def sample_gumbel_max(
    logits: tf.Tensor, seed: tf.Tensor, temperature: float = 1.0, row_offset: tf.Tensor | int = 0
) -> tf.Tensor:
    """Samples ids from softmax(logits / temperature) with the Gumbel-max trick.

    Stateless and keyed by (seed, row): `logits` [B, N, V] are rows
    `row_offset .. row_offset + B` of a global batch, and each row gets the
    noise it would get in the whole batch. Philox is counter-based, so a
    replica (or micro-batch) draws exactly its slice by starting the counter
    at its first row. The samples therefore do not depend on how the global
    batch is split over replicas or micro-batches. The 1e-9 terms follow the
    reference implementation.
    """
    logits = tf.stop_gradient(tf.cast(logits, tf.float32)) / temperature
    shape = tf.shape(logits)
    rows, n, vocab = shape[0], shape[1], shape[2]
    # Philox emits 4 values per counter step: pad the vocab axis to a
    # multiple of 4 so every row starts on a counter boundary.
    padded = (vocab + 3) // 4 * 4
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=tf.cast(seed, tf.int32))
    steps_per_row = tf.cast(n * padded // 4, tf.uint64)
    counter += tf.stack([tf.cast(row_offset, tf.uint64) * steps_per_row, tf.constant(0, tf.uint64)])
    uniform = tf.raw_ops.StatelessRandomUniformV2(
        shape=tf.stack([rows, n, padded]), key=key, counter=counter, alg=_PHILOX, dtype=tf.float32
    )[:, :, :vocab]
    gumbel = -tf.math.log(-tf.math.log(uniform + 1e-9) + 1e-9)
    return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)


_PHILOX = 1  # tf.random.Algorithm.PHILOX
