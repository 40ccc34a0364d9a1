"""Sentence (pair) classification / regression head on the [CLS] token."""

from __future__ import annotations

import keras

from electra_tf.kernels import Dropout
from electra_tf.modeling.initializers import activation, truncated_normal


@keras.saving.register_keras_serializable(package="electra_tf")
class HfClassificationHead(keras.layers.Layer):
    """dropout -> dense(hidden, gelu) -> dropout -> dense(num_outputs) on [CLS].

    The layout of Hugging Face's `ElectraClassificationHead` (`dense`,
    `out_proj`), so fine-tuned classifiers convert both ways.

    Args:
        hidden_size: Width of the intermediate dense layer.
        num_outputs: Classes (1 for regression).
        dropout: Dropout rate before each dense layer.
        hidden_act: Activation name (see ElectraConfig.hidden_act).
        initializer_range: Stddev of the kernel initializer.

    Example:
        >>> head = HfClassificationHead(64, num_outputs=2)
        >>> head(np.zeros((4, 8, 64), "float32")).shape  # doctest: +SKIP
        (4, 2)
    """

    def __init__(
        self,
        hidden_size: int,
        num_outputs: int,
        dropout: float = 0.1,
        hidden_act: str = "gelu",
        initializer_range: float = 0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_outputs = num_outputs
        self.dropout_rate = dropout
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        init = truncated_normal(initializer_range)
        self.dropout = Dropout(dropout, dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(
            hidden_size,
            activation=activation(hidden_act),
            kernel_initializer=init,
            dtype=self.dtype_policy,
            name="dense",
        )
        self.out_proj = keras.layers.Dense(
            num_outputs, kernel_initializer=init, dtype=self.dtype_policy, name="out_proj"
        )

    def build(self, input_shape):
        self.dense.build((input_shape[0], input_shape[-1]))
        self.out_proj.build((input_shape[0], self.hidden_size))
        self.built = True

    def call(self, sequence_output, training=None):
        x = self.dropout(sequence_output[:, 0], training=training)
        x = self.dropout(self.dense(x), training=training)
        return self.out_proj(x)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "num_outputs": self.num_outputs,
            "dropout": self.dropout_rate,
            "hidden_act": self.hidden_act,
            "initializer_range": self.initializer_range,
        }
