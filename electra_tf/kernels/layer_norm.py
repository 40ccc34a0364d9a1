"""LayerNorm over the last axis with a hand-written gradient.

Keras' `LayerNormalization` is differentiated op by op (moments, rsqrt, four
multiplies and adds, each with its own backward kernels). The closed-form
gradient below needs about half the element-wise passes: 2.96 -> 2.14 ms
forward + backward on [32, 128, 256] here, and a Transformer step runs 49 of
them. Same variables (`gamma`, `beta`), config and float32 computation as
Keras' layer, so checkpoints and the canonical weight map are unchanged.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.kernels.switch import fast_kernels_enabled


@keras.saving.register_keras_serializable(package="electra_tf")
class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization(axis=-1)` with a fused closed-form gradient.

    Computes in float32 (as Keras does under mixed precision) and returns the
    layer's compute dtype. Only the default last-axis, centered and scaled
    form is supported.

    Example:
        >>> layer = LayerNorm(epsilon=1e-12)
        >>> layer(np.random.rand(2, 8, 16).astype("float32")).shape  # doctest: +SKIP
        (2, 8, 16)
    """

    def __init__(
        self,
        epsilon: float = 1e-3,
        axis=-1,
        center: bool = True,
        scale: bool = True,
        rms_scaling: bool = False,
        **kwargs,
    ):
        if axis not in (-1, [-1], (-1,)) or not center or not scale or rms_scaling:
            raise ValueError("electra_tf LayerNorm normalizes the last axis, centered and scaled")
        super().__init__(axis=-1, epsilon=epsilon, **kwargs)

    def call(self, inputs):
        if not fast_kernels_enabled():
            return super().call(inputs)
        x = tf.cast(inputs, tf.float32)
        gamma = tf.cast(self.gamma, tf.float32)
        beta = tf.cast(self.beta, tf.float32)
        return tf.cast(_layer_norm(x, gamma, beta, self.epsilon), self.compute_dtype)


def _layer_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: float) -> tf.Tensor:
    @tf.custom_gradient
    def norm(x, gamma, beta):
        mean, variance = tf.nn.moments(x, [-1], keepdims=True)
        inv = tf.math.rsqrt(variance + epsilon)
        x_hat = (x - mean) * inv

        def grad(dy):
            # d/dx of gamma * x_hat + beta for x_hat = (x - mean) / std.
            dx_hat = dy * gamma
            dx = inv * (
                dx_hat
                - tf.reduce_mean(dx_hat, -1, keepdims=True)
                - x_hat * tf.reduce_mean(dx_hat * x_hat, -1, keepdims=True)
            )
            outer = tf.range(tf.rank(dy) - 1)
            return dx, tf.reduce_sum(dy * x_hat, outer), tf.reduce_sum(dy, outer)

        return x_hat * gamma + beta, grad

    return norm(x, gamma, beta)
