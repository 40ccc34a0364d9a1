"""The reference's sentence-level head: dropout -> dense on the [CLS] state."""

from __future__ import annotations

import keras

from electra_tf.kernels import Dropout


@keras.saving.register_keras_serializable(package="electra_tf")
class ReferenceClassificationHead(keras.layers.Layer):
    """dropout -> dense(num_outputs) on the first ([CLS]) token's final state.

    The head google-research/electra fine-tunes for GLUE classification and
    regression (`finetune/classification/classification_tasks.py`): no extra
    hidden layer, and the output kernel initialised as TF1's
    `tf.layers.dense` does (Glorot uniform, zero bias).

    Args:
        num_outputs: Classes (1 for regression).
        dropout: Dropout rate on the [CLS] state (the reference's 0.1).

    Example:
        >>> import numpy as np
        >>> head = ReferenceClassificationHead(num_outputs=2)
        >>> tuple(head(np.zeros((4, 8, 16), "float32")).shape)
        (4, 2)
    """

    def __init__(self, num_outputs: int, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_outputs = num_outputs
        self.dropout_rate = dropout
        self.dropout = Dropout(dropout, dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(
            num_outputs,
            kernel_initializer="glorot_uniform",
            dtype=self.dtype_policy,
            name="output",
        )

    def build(self, input_shape):
        self.dense.build((input_shape[0], input_shape[-1]))
        self.built = True

    def call(self, sequence_output, training=None):
        return self.dense(self.dropout(sequence_output[:, 0], training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "num_outputs": self.num_outputs,
            "dropout": self.dropout_rate,
        }
