"""`x @ kernel + bias` on 2-D activations, with a gradient that keeps oneDNN fast.

Autodiff computes the input gradient of `x @ kernel` as
`dy @ kernel^T` with `transpose_b=True`. oneDNN runs that form well below its
peak when the kernel is wider than it is tall: for the FFN input kernel of
ELECTRA-Small ([4096, 1024] x [256, 1024]^T) 6.7 ms against 4.9 ms for the
same product on an explicitly transposed [1024, 256] copy. Transposing the
kernel (1 MB) first is cheap, but Grappler folds a plain Transpose back into
the MatMul; a Snapshot between them keeps it. The weight gradient is the
usual one. The bias gradient is too, except in bfloat16: TensorFlow's CPU
BiasAddGrad sums bfloat16 in bfloat16, and over the 4,096 tokens of a
32 x 128 batch its result was off by about a tenth of the largest sum (a
float32 accumulator: under 0.5%, bfloat16's own rounding), so bfloat16
gradients are summed by `reduce_sum`, which accumulates in float32 and also
ran 2-2.5x faster than BiasAddGrad there.

`pad_intermediate` keeps a feed-forward block's activations off row strides
that oneDNN's AVX2 kernels run at two thirds of their speed.
"""

from __future__ import annotations

import functools
import os
import platform

import tensorflow as tf

# Row strides that are a multiple of 2 KB make oneDNN's AVX2 GEMM kernels
# thrash cache sets (4K aliasing): an ELECTRA-Small FFN weight gradient,
# [4096, 256]^T x [4096, 1024], runs at 80 GFLOP/s against 130 for the same
# product with 1,040 columns. Sixteen zero columns (one 64-byte cache line)
# break the stride.
_ALIASING_STRIDE_BYTES = 2048
_PAD_COLUMNS = 16


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
        if dy.dtype == tf.bfloat16:
            dbias = tf.reduce_sum(dy, 0)
        else:
            dbias = tf.raw_ops.BiasAddGrad(out_backprop=dy)
        return dx, dkernel, dbias

    return tf.nn.bias_add(tf.matmul(x, kernel), bias), grad


def pad_intermediate(
    inner_kernel: tf.Tensor, inner_bias: tf.Tensor, outer_kernel: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Widens a feed-forward block by zero units when its row stride aliases.

    For `act(x @ inner_kernel + inner_bias) @ outer_kernel`, appends zero
    columns to `inner_kernel` [in, width] and `inner_bias` [width] and zero
    rows to `outer_kernel` [width, out]. The extra units meet zero rows of
    `outer_kernel`, so the block's output is unchanged for any activation,
    and the pad's gradient drops the padding's share, so the variables train
    exactly as before. The intermediate activations, the block's largest
    tensors, then have a row stride that is not a multiple of 2 KB; at
    ELECTRA-Small's width this takes the block's forward and backward on
    AVX2 oneDNN from 107 to 77 ms. Worth it only where
    `aliasing_prone_cpu()`: on AVX-512 the wider block made the whole
    ELECTRA-Small step 9% slower.

    Example:
        >>> k1, b1, k2 = pad_intermediate(tf.ones([4, 512]), tf.ones([512]), tf.ones([512, 4]))
        >>> k1.shape, b1.shape, k2.shape
        (TensorShape([4, 528]), TensorShape([528]), TensorShape([528, 4]))
    """
    inner_kernel, inner_bias, outer_kernel = (
        tf.convert_to_tensor(t) for t in (inner_kernel, inner_bias, outer_kernel)
    )
    width = inner_kernel.shape[-1]
    if width is None or (width * inner_kernel.dtype.size) % _ALIASING_STRIDE_BYTES:
        return inner_kernel, inner_bias, outer_kernel
    return (
        tf.pad(inner_kernel, [[0, 0], [0, _PAD_COLUMNS]]),
        tf.pad(inner_bias, [[0, _PAD_COLUMNS]]),
        tf.pad(outer_kernel, [[0, _PAD_COLUMNS], [0, 0]]),
    )


@functools.cache
def aliasing_prone_cpu() -> bool:
    """Whether oneDNN runs its AVX2-class x86 GEMM kernels in this process.

    True on an x86 CPU without AVX-512, or when `ONEDNN_MAX_CPU_ISA` (or its
    old name `DNNL_MAX_CPU_ISA`) caps oneDNN below AVX-512. AVX-512 kernels
    block their operands differently and run aliasing strides at full speed.
    """
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
    if cap and not cap.startswith(("AVX512", "AVX10", "ALL", "DEFAULT")):
        return True
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx512f" not in line.split()
    except OSError:
        pass  # not Linux: leave the shapes alone
    return False
