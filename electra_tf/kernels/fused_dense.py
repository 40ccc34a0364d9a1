"""`x @ kernel + bias` on 2-D activations, with a gradient that keeps oneDNN fast.

Autodiff computes the input gradient of `x @ kernel` as
`dy @ kernel^T` with `transpose_b=True`. oneDNN runs that form well below its
peak when the kernel is wider than it is tall: for the FFN input kernel of
ELECTRA-Small ([4096, 1024] x [256, 1024]^T) 6.7 ms against 4.9 ms for the
same product on an explicitly transposed [1024, 256] copy. Transposing the
kernel (1 MB) first is cheap, but Grappler folds a plain Transpose back into
the MatMul; a Snapshot between them keeps it. Weight and bias gradients are
the usual ones (BiasAddGrad for the bias).
"""

from __future__ import annotations

import tensorflow as tf


def dense(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
    """Returns `x @ kernel + bias` for `x` [tokens, in] and `kernel` [in, out].

    Example:
        >>> dense(tf.ones([2, 3]), tf.ones([3, 4]), tf.zeros([4])).shape
        TensorShape([2, 4])
    """
    return _dense(x, tf.convert_to_tensor(kernel), tf.convert_to_tensor(bias))


@tf.custom_gradient
def _dense(x, kernel, bias):
    def grad(dy):
        wide = kernel.shape.is_fully_defined() and kernel.shape[1] > kernel.shape[0]
        if wide:
            # Snapshot: without it Grappler folds the Transpose into transpose_b.
            dx = tf.matmul(dy, tf.raw_ops.Snapshot(input=tf.transpose(kernel)))
        else:
            dx = tf.matmul(dy, kernel, transpose_b=True)
        dkernel = tf.matmul(x, dy, transpose_a=True)
        return dx, dkernel, tf.raw_ops.BiasAddGrad(out_backprop=dy)

    return tf.nn.bias_add(tf.matmul(x, kernel), bias), grad
