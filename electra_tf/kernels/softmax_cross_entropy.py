"""Sparse softmax cross-entropy with a closed-form gradient.

TensorFlow's CPU `SparseSoftmaxCrossEntropyWithLogits` evaluates its Eigen
expressions pass by pass and computes the backprop tensor in the forward
kernel: 47-52 ms forward + backward for the generator's [608, 30522] MLM
logits of an ELECTRA-Small step here. One max, one exp and one sum forward
and one scaled pass backward (the softmax saved from the forward) take
26-30 ms, the same loss to float rounding.
"""

from __future__ import annotations

import tensorflow as tf


def sparse_softmax_cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-row `-log softmax(logits)[label]` in float32.

    Args:
        labels: int [...] class ids in `[0, classes)`.
        logits: float [..., classes] (bf16/fp16 are computed in float32).

    Returns:
        float32 [...] losses, differentiable with respect to `logits`.

    Example:
        >>> import numpy as np
        >>> loss = sparse_softmax_cross_entropy([0, 2], np.zeros((2, 3), "float32"))
        >>> np.allclose(loss, np.log(3.0))
        True
    """
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.int32)
    shape = tf.shape(labels)
    classes = tf.shape(logits)[-1]
    loss = _cross_entropy(tf.reshape(labels, [-1]), tf.reshape(logits, [-1, classes]))
    return tf.reshape(loss, shape)


@tf.custom_gradient
def _cross_entropy(labels: tf.Tensor, logits: tf.Tensor):
    top = tf.reduce_max(logits, axis=-1, keepdims=True)
    exp = tf.exp(logits - top)
    total = tf.reduce_sum(exp, axis=-1)
    loss = tf.math.log(total) + top[:, 0] - tf.gather(logits, labels, batch_dims=1)

    def grad(upstream):
        # softmax * upstream, minus upstream at each row's label.
        scaled = exp * (upstream / total)[:, None]
        at_label = tf.stack([tf.range(tf.shape(labels)[0]), labels], axis=1)
        return None, tf.tensor_scatter_nd_sub(scaled, at_label, upstream)

    return loss, grad
