"""BERT/ELECTRA multi-head self-attention laid out for fast CPU training.

Same function and weights as google-research/electra's `attention_layer`
(query/key/value/output dense layers, scaled dot product, additive padding
mask, dropout on the probabilities), computed with as few, as large matrix
multiplications as possible: one [tokens, hidden] x [hidden, 3 * hidden]
product for Q, K and V (the 1/sqrt(head_size) folded into the query weights),
two batched products per head, and one output product, all on 2-D
activations so the bias adds fuse into the matmuls. keras.layers
.MultiHeadAttention's einsum projections lower to broadcast batched matmuls
instead, which were the slowest kernels of a training step here.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from electra_tf.kernels import Dropout, dense
from electra_tf.modeling.initializers import add_dense_weights

# Added to the scores of padding keys; exp() of it underflows to 0 in every
# float type, and it is finite in float16 (unlike -1e9).
MASK_BIAS = -10000.0


def attention_bias(input_mask, dtype) -> tf.Tensor:
    """[batch, length] 0/1 mask -> additive [batch, 1, 1, length] score bias."""
    # expand_dims, not [:, None, None, :]: TFLite has no new-axis strided slice.
    mask = tf.expand_dims(tf.expand_dims(tf.cast(input_mask, dtype), 1), 1)
    return (1.0 - mask) * tf.cast(MASK_BIAS, dtype)


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraSelfAttention(keras.layers.Layer):
    """Multi-head self-attention over [batch, length, hidden] inputs.

    Weights (canonical ELECTRA/BERT layout, kernels [in, out]):
    `query_kernel`, `query_bias`, `key_*`, `value_*` and `output_kernel`,
    `output_bias`.

    Args:
        num_heads: Number of attention heads; must divide the hidden size.
        dropout: Dropout rate on the attention probabilities.
        kernel_initializer: Initializer of the four kernels (biases are 0).

    Call args:
        inputs: [batch, length, hidden] float tensor.
        bias: [batch, 1, 1, length] additive score bias from `attention_bias`
            (0 for tokens, `MASK_BIAS` for padding), or None.
        training: Whether to apply dropout.

    Example:
        >>> layer = ElectraSelfAttention(num_heads=2)
        >>> x = np.random.rand(2, 8, 16).astype("float32")
        >>> layer(x, attention_bias(np.ones((2, 8)), "float32")).shape  # doctest: +SKIP
        (2, 8, 16)
    """

    def __init__(
        self,
        num_heads: int,
        dropout: float = 0.0,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.dropout_rate = dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.dropout = Dropout(dropout, dtype=self.dtype_policy, name="dropout")

    def build(self, input_shape):
        hidden = int(input_shape[-1])
        if hidden % self.num_heads:
            raise ValueError(
                f"hidden size {hidden} is not a multiple of num_heads {self.num_heads}"
            )
        self.hidden_size = hidden
        self.head_size = hidden // self.num_heads
        for name in ("query", "key", "value", "output"):
            add_dense_weights(self, name, (hidden, hidden), self.kernel_initializer)
        self.built = True

    def _fused_qkv(self):
        # The score scale is applied to the [hidden, hidden] query weights
        # rather than to the activations.
        scale = 1.0 / math.sqrt(self.head_size)
        kernel = tf.concat([self.query_kernel * scale, self.key_kernel, self.value_kernel], 1)
        bias = tf.concat([self.query_bias * scale, self.key_bias, self.value_bias], 0)
        return kernel, bias

    def freeze_for_inference(self) -> None:
        """Computes the fused Q/K/V kernel and bias once, for inference graphs
        traced from now on (an export), instead of in every call: for a single
        short text, assembling them costs about as much as the product.

        The copies do not follow later changes to the weights: call this only
        on a model that will not be trained or reloaded again.
        """
        kernel, bias = self._fused_qkv()
        frozen = (
            tf.Variable(kernel, trainable=False, name="qkv_kernel"),
            tf.Variable(bias, trainable=False, name="qkv_bias"),
        )
        # Not through Keras' __setattr__: these are not weights of the layer
        # (checkpoints and weight maps stay as they are); the export saves them
        # as variables its functions capture.
        object.__setattr__(self, "_frozen_qkv", frozen)

    def call(self, inputs, bias=None, training=None):
        shape = tf.shape(inputs)
        batch, length = shape[0], shape[1]
        heads, size = self.num_heads, self.head_size
        frozen = getattr(self, "_frozen_qkv", None)
        if frozen is not None and not training:
            kernel, qkv_bias = (tf.cast(t, inputs.dtype) for t in frozen)
        else:
            kernel, qkv_bias = self._fused_qkv()
        # One matmul for Q, K and V.
        x = tf.reshape(inputs, [-1, self.hidden_size])
        qkv = dense(x, kernel, qkv_bias)
        qkv = tf.reshape(qkv, [batch, length, 3, heads, size])
        q, k, v = tf.unstack(tf.transpose(qkv, [2, 0, 3, 1, 4]))  # each [B, heads, L, size]

        scores = tf.matmul(q, k, transpose_b=True)  # [B, heads, L, L]
        if bias is not None:
            scores += tf.cast(bias, scores.dtype)
        probs = self.dropout(tf.nn.softmax(scores), training=training)
        context = tf.matmul(probs, v)  # [B, heads, L, size]

        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [-1, self.hidden_size])
        output = dense(context, self.output_kernel, self.output_bias)
        return tf.reshape(output, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "dropout": self.dropout_rate,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
