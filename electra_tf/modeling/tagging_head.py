"""Token tagging head (NER, chunking): one set of label logits per token."""

from __future__ import annotations

import keras

from electra_tf.kernels.dropout import Dropout
from electra_tf.modeling.initializers import truncated_normal


@keras.saving.register_keras_serializable(package="electra_tf")
class TaggingHead(keras.layers.Layer):
    """dropout -> dense(num_labels) per token (Hugging Face's `classifier`).

    Args:
        num_labels: Tag count.
        dropout: Dropout rate.
        initializer_range: Stddev of the kernel initializer.

    Example:
        >>> head = TaggingHead(num_labels=5)
        >>> head(np.zeros((2, 8, 64), "float32")).shape  # doctest: +SKIP
        (2, 8, 5)
    """

    def __init__(
        self, num_labels: int, dropout: float = 0.1, initializer_range: float = 0.02, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_labels = num_labels
        self.dropout_rate = dropout
        self.initializer_range = initializer_range
        self.dropout = Dropout(dropout, dtype=self.dtype_policy)
        self.classifier = keras.layers.Dense(
            num_labels,
            kernel_initializer=truncated_normal(initializer_range),
            dtype=self.dtype_policy,
            name="classifier",
        )

    def build(self, input_shape):
        self.classifier.build(input_shape)
        self.built = True

    def call(self, sequence_output, training=None):
        return self.classifier(self.dropout(sequence_output, training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "num_labels": self.num_labels,
            "dropout": self.dropout_rate,
            "initializer_range": self.initializer_range,
        }
