"""Custom CPU kernels of the Transformer layer and the losses, behind one switch.

`dense`, `gelu`, `LayerNorm`, `Dropout` and `sparse_softmax_cross_entropy`
here are what the layers and losses use. With fast kernels on they are this
package's hand-tuned versions (each module says what it saves, measured on
oneDNN); off, they are the stock ops (`tf.matmul` + `tf.nn.bias_add`,
`tf.nn.gelu`, Keras' `LayerNormalization` and `Dropout`,
`tf.nn.sparse_softmax_cross_entropy_with_logits`). The variables are the
same either way, so weights and checkpoints move freely between the two.

The default (`None`) turns them on when no GPU or TPU is visible: they were
tuned for oneDNN on CPUs and never measured on accelerators. The switch is
read when a layer is traced, so set it before building the model (the jobs
do, from `--fast_kernels`).
"""

from __future__ import annotations

import tensorflow as tf

_FAST: bool | None = None


def set_fast_kernels(enabled: bool | None) -> None:
    """On, off, or None for the default (on for CPU-only machines)."""
    global _FAST
    _FAST = enabled


def fast_kernels_enabled() -> bool:
    if _FAST is not None:
        return _FAST
    return not (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def dense(x: tf.Tensor, kernel, bias) -> tf.Tensor:
    """`x @ kernel + bias` for 2-D `x` [tokens, in] and `kernel` [in, out]."""
    if fast_kernels_enabled():
        from electra_tf.kernels.fused_dense import dense as fast_dense

        return fast_dense(x, kernel, bias)
    return tf.nn.bias_add(tf.matmul(x, kernel), bias)


def pad_intermediate(inner_kernel, inner_bias, outer_kernel) -> tuple:
    """A feed-forward block's weights, with zero units that break an aliasing
    row stride of its activations where the CPU's GEMM kernels need it."""
    if fast_kernels_enabled():
        from electra_tf.kernels import fused_dense

        if fused_dense.aliasing_prone_cpu():
            return fused_dense.pad_intermediate(inner_kernel, inner_bias, outer_kernel)
    return inner_kernel, inner_bias, outer_kernel


def gelu(x: tf.Tensor, approximate: bool = False) -> tf.Tensor:
    """GELU for training (erf form, or tanh with `approximate`)."""
    if fast_kernels_enabled():
        from electra_tf.kernels.fused_gelu import fused_gelu

        return fused_gelu(x, approximate)
    return tf.nn.gelu(x, approximate=approximate)


def sparse_softmax_cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-row softmax cross-entropy in float32 (logits may be bf16/fp16)."""
    if fast_kernels_enabled():
        from electra_tf.kernels.softmax_cross_entropy import sparse_softmax_cross_entropy as fast

        return fast(labels, logits)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.cast(logits, tf.float32))


from electra_tf.kernels.dropout import Dropout  # noqa: E402  (imports the switch above)
from electra_tf.kernels.layer_norm import LayerNorm  # noqa: E402

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
