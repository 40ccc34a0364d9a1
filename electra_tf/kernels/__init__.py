"""Custom CPU kernels of the Transformer layer and the losses, behind one switch.

`dense`, `gelu`, `LayerNorm`, `Dropout` and `sparse_softmax_cross_entropy`
here are what the layers and losses use. With fast kernels on they are this
package's hand-tuned versions (each module says what it saves, measured on
oneDNN); off, they are the stock ops (`tf.matmul` + `tf.nn.bias_add`,
`tf.nn.gelu`, Keras' `LayerNormalization` and `Dropout`,
`tf.nn.sparse_softmax_cross_entropy_with_logits`). The variables are the
same either way, so weights and checkpoints move freely between the two.

The switch and its default live in `switch.py`.
"""

from __future__ import annotations

import tensorflow as tf

from electra_tf.kernels import fused_dense
from electra_tf.kernels.dropout import Dropout
from electra_tf.kernels.fused_gelu import fused_gelu
from electra_tf.kernels.layer_norm import LayerNorm
from electra_tf.kernels.softmax_cross_entropy import sparse_softmax_cross_entropy as _fast_xent
from electra_tf.kernels.switch import fast_kernels_enabled, set_fast_kernels


def dense(x: tf.Tensor, kernel, bias) -> tf.Tensor:
    """`x @ kernel + bias` for 2-D `x` [tokens, in] and `kernel` [in, out]."""
    if fast_kernels_enabled():
        return fused_dense.dense(x, kernel, bias)
    return tf.nn.bias_add(tf.matmul(x, kernel), bias)


def pad_intermediate(inner_kernel, inner_bias, outer_kernel) -> tuple:
    """A feed-forward block's weights, with zero units that break an aliasing
    row stride of its activations where the CPU's GEMM kernels need it."""
    if fast_kernels_enabled() and fused_dense.aliasing_prone_cpu():
        return fused_dense.pad_intermediate(inner_kernel, inner_bias, outer_kernel)
    return inner_kernel, inner_bias, outer_kernel


def gelu(x: tf.Tensor, approximate: bool = False) -> tf.Tensor:
    """GELU for training (erf form, or tanh with `approximate`)."""
    if fast_kernels_enabled():
        return fused_gelu(x, approximate)
    return tf.nn.gelu(x, approximate=approximate)


def sparse_softmax_cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-row softmax cross-entropy in float32 (logits may be bf16/fp16)."""
    if fast_kernels_enabled():
        return _fast_xent(labels, logits)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.cast(logits, tf.float32))


__all__ = [
    "Dropout",
    "LayerNorm",
    "dense",
    "fast_kernels_enabled",
    "gelu",
    "pad_intermediate",
    "set_fast_kernels",
    "sparse_softmax_cross_entropy",
]
