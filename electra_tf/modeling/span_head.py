"""Extractive question-answering head: start/end logits, and a no-answer logit for SQuAD 2.0."""

from __future__ import annotations

import keras

from electra_tf.modeling.initializers import activation, truncated_normal


@keras.saving.register_keras_serializable(package="electra_tf")
class SpanHead(keras.layers.Layer):
    """Per-token start/end logits (`qa_outputs`, as Hugging Face), plus, with
    `with_null`, an answerability classifier on [CLS] (dense-gelu-dense(1))
    whose logit is high when the question has no answer in the passage.

    Args:
        hidden_size: Width of the encoder output.
        with_null: Add the no-answer classifier (SQuAD 2.0).
        hidden_act: Activation name of the classifier's dense layer.
        initializer_range: Stddev of the kernel initializer.

    Returns:
        A dict: `start_logits` and `end_logits` [batch, length], and with
        `with_null` also `null_logit` [batch].

    Example:
        >>> head = SpanHead(64, with_null=True)
        >>> out = head(np.zeros((2, 8, 64), "float32"))  # doctest: +SKIP
        >>> out["start_logits"].shape, out["null_logit"].shape  # doctest: +SKIP
        ((2, 8), (2,))
    """

    def __init__(
        self,
        hidden_size: int,
        with_null: bool = False,
        hidden_act: str = "gelu",
        initializer_range: float = 0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.with_null = with_null
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        init = truncated_normal(initializer_range)
        self.qa_outputs = keras.layers.Dense(
            2, kernel_initializer=init, dtype=self.dtype_policy, name="qa_outputs"
        )
        if with_null:
            self.null_dense = keras.layers.Dense(
                hidden_size,
                activation=activation(hidden_act),
                kernel_initializer=init,
                dtype=self.dtype_policy,
                name="null_dense",
            )
            self.null_output = keras.layers.Dense(
                1, kernel_initializer=init, dtype=self.dtype_policy, name="null_output"
            )

    def build(self, input_shape):
        self.qa_outputs.build(input_shape)
        if self.with_null:
            self.null_dense.build((input_shape[0], input_shape[-1]))
            self.null_output.build((input_shape[0], self.hidden_size))
        self.built = True

    def call(self, sequence_output):
        logits = self.qa_outputs(sequence_output)
        outputs = {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}
        if self.with_null:
            null = self.null_output(self.null_dense(sequence_output[:, 0]))
            outputs["null_logit"] = keras.ops.squeeze(null, -1)
        return outputs

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "with_null": self.with_null,
            "hidden_act": self.hidden_act,
            "initializer_range": self.initializer_range,
        }
