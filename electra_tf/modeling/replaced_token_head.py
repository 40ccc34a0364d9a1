"""The discriminator's replaced-token-detection head."""

from __future__ import annotations

import keras

from electra_tf.modeling.initializers import activation, truncated_normal


@keras.saving.register_keras_serializable(package="electra_tf")
class ReplacedTokenHead(keras.layers.Layer):
    """dense(hidden, act) -> dense(1): one "replaced" logit per token.

    Matches `discriminator_predictions` in google-research/electra and
    Hugging Face's `ElectraDiscriminatorPredictions` (dense, dense_prediction).

    Args:
        hidden_size: Width of the intermediate dense layer.
        hidden_act: Activation name (see ElectraConfig.hidden_act).
        initializer_range: Stddev of the kernel initializer.

    Example:
        >>> head = ReplacedTokenHead(64, "gelu", 0.02)
        >>> head(np.zeros((2, 8, 64), "float32")).shape  # doctest: +SKIP
        (2, 8)
    """

    def __init__(
        self, hidden_size: int, hidden_act: str = "gelu", initializer_range: float = 0.02, **kwargs
    ):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        init = truncated_normal(initializer_range)
        self.dense = keras.layers.Dense(
            hidden_size,
            activation=activation(hidden_act),
            kernel_initializer=init,
            dtype=self.dtype_policy,
            name="dense",
        )
        # Glorot uniform, as the reference's tf.layers.dense(hidden, units=1)
        # (run_pretraining._get_discriminator_output gives it no initializer).
        self.dense_prediction = keras.layers.Dense(
            1, kernel_initializer="glorot_uniform", dtype=self.dtype_policy, name="dense_prediction"
        )

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.dense_prediction.build((*input_shape[:-1], self.hidden_size))
        self.built = True

    def call(self, sequence_output):
        return keras.ops.squeeze(self.dense_prediction(self.dense(sequence_output)), -1)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "hidden_act": self.hidden_act,
            "initializer_range": self.initializer_range,
        }
