"""One post-LayerNorm Transformer layer of ELECTRA (BERT's `layer_N`).

attention -> dropout -> residual -> LayerNorm -> dense + activation -> dense
-> dropout -> residual -> LayerNorm, exactly as google-research/electra's
`transformer_model` and keras-hub's TransformerEncoder (normalize_first=False).
The feed-forward products run on 2-D [tokens, width] activations with
`bias_add`, so TensorFlow fuses each bias into its matmul.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.kernels import Dropout, LayerNorm, dense, gelu, pad_intermediate
from electra_tf.modeling.initializers import (
    GELU_APPROXIMATE,
    activation,
    add_dense_weights,
    clone_initializer,
)
from electra_tf.modeling.self_attention import ElectraSelfAttention


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraTransformerLayer(keras.layers.Layer):
    """Self-attention and feed-forward blocks with residuals and post-LayerNorm.

    Weights: `attention` (an `ElectraSelfAttention`), `attention_layer_norm`,
    `intermediate_kernel` / `intermediate_bias` ([hidden, intermediate]),
    `output_kernel` / `output_bias` ([intermediate, hidden]),
    `output_layer_norm`.

    Args:
        num_heads: Attention heads.
        intermediate_size: Feed-forward width.
        hidden_act: An `ElectraConfig.hidden_act` ("gelu", "gelu_approximate", "relu").
        dropout: Rate for the attention probabilities and both residual branches.
        layer_norm_epsilon: LayerNorm epsilon.
        kernel_initializer: Initializer of every kernel (biases are 0).

    Call args:
        inputs: [batch, length, hidden] float tensor.
        bias: Additive attention bias from `self_attention.attention_bias`, or None.
        training: Whether to apply dropout.

    Example:
        >>> layer = ElectraTransformerLayer(num_heads=2, intermediate_size=64)
        >>> layer(np.random.rand(2, 8, 16).astype("float32")).shape  # doctest: +SKIP
        (2, 8, 16)
    """

    def __init__(
        self,
        num_heads: int,
        intermediate_size: int,
        hidden_act: str = "gelu",
        dropout: float = 0.0,
        layer_norm_epsilon: float = 1e-12,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.dropout_rate = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.activation = activation(hidden_act)
        self.attention = ElectraSelfAttention(
            num_heads,
            dropout=dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="attention",
        )
        self.attention_dropout = Dropout(dropout, dtype=self.dtype_policy, name="attention_dropout")
        self.attention_layer_norm = LayerNorm(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="attention_layer_norm"
        )
        self.output_dropout = Dropout(dropout, dtype=self.dtype_policy, name="output_dropout")
        self.output_layer_norm = LayerNorm(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="output_layer_norm"
        )

    def build(self, input_shape):
        hidden = int(input_shape[-1])
        self.hidden_size = hidden
        self.attention.build(input_shape)
        self.attention_layer_norm.build(input_shape)
        self.output_layer_norm.build(input_shape)
        add_dense_weights(
            self, "intermediate", (hidden, self.intermediate_size), self.kernel_initializer
        )
        add_dense_weights(self, "output", (self.intermediate_size, hidden), self.kernel_initializer)
        self.built = True

    def call(self, inputs, bias=None, training=None):
        shape = tf.shape(inputs)
        x = self.attention(inputs, bias=bias, training=training)
        x = self.attention_dropout(x, training=training)
        x = self.attention_layer_norm(x + inputs)

        flat = tf.reshape(x, [-1, self.hidden_size])
        inner_kernel, inner_bias, outer_kernel = (
            self.intermediate_kernel,
            self.intermediate_bias,
            self.output_kernel,
        )
        if training:
            # Inference keeps the plain weights, so exports hold no padding.
            inner_kernel, inner_bias, outer_kernel = pad_intermediate(
                inner_kernel, inner_bias, outer_kernel
            )
        h = dense(flat, inner_kernel, inner_bias)
        if training and self.hidden_act in GELU_APPROXIMATE:
            h = gelu(h, approximate=GELU_APPROXIMATE[self.hidden_act])
        else:
            h = self.activation(h)
        h = dense(h, outer_kernel, self.output_bias)
        h = self.output_dropout(tf.reshape(h, shape), training=training)
        return self.output_layer_norm(h + x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "hidden_act": self.hidden_act,
            "dropout": self.dropout_rate,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
