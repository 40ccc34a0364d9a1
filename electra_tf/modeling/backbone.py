"""The ELECTRA Transformer encoder (one tower), optionally on shared embeddings."""

from __future__ import annotations

import keras

from electra_tf.config import ElectraConfig
from electra_tf.modeling.embeddings import ElectraEmbeddings
from electra_tf.modeling.initializers import truncated_normal
from electra_tf.modeling.self_attention import attention_bias
from electra_tf.modeling.transformer_layer import ElectraTransformerLayer

TOWERS = ("discriminator", "generator")


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraBackbone(keras.Model):
    """Embeddings, an optional projection, then post-LN Transformer layers.

    The discriminator tower uses the config's sizes, the generator tower the
    `generator_*` sizes. Pass `embeddings` to share one `ElectraEmbeddings`
    between towers, as ELECTRA does; each tower keeps its own
    `embeddings_project` when `embedding_size != hidden size`.

    Args:
        config: The model's `ElectraConfig`.
        tower: "discriminator" or "generator".
        embeddings: An existing `ElectraEmbeddings` to share (else one is made).

    Call args:
        inputs: dict with int `input_ids`, `input_mask` and `segment_ids`, each
            [batch, length].

    Returns:
        The last hidden states, [batch, length, hidden].

    Example:
        >>> config = ElectraConfig.from_preset("tiny", vocab_size=100)
        >>> encoder = ElectraBackbone(config)
        >>> ids = np.ones((2, 8), "int32")
        >>> encoder({"input_ids": ids, "input_mask": ids,
        ...          "segment_ids": 0 * ids}).shape  # doctest: +SKIP
        (2, 8, 64)
    """

    def __init__(
        self,
        config: ElectraConfig,
        tower: str = "discriminator",
        embeddings: ElectraEmbeddings | None = None,
        **kwargs,
    ):
        if tower not in TOWERS:
            raise ValueError(f"tower must be one of {TOWERS}, got {tower!r}")
        kwargs.setdefault("name", tower)
        super().__init__(**kwargs)
        self.config = config
        self.tower = tower
        if tower == "discriminator":
            hidden, layers, heads, inner = (
                config.hidden_size,
                config.num_layers,
                config.num_heads,
                config.intermediate_size,
            )
        else:
            hidden, layers, heads, inner = (
                config.generator_hidden_size,
                config.generator_num_layers,
                config.generator_num_heads,
                config.generator_intermediate_size,
            )
        self.hidden_size = hidden
        init = truncated_normal(config.initializer_range)
        self.embeddings = embeddings or ElectraEmbeddings(
            config, dtype=self.dtype_policy, name="embeddings"
        )
        self.embeddings_project = None
        if config.embedding_size != hidden:
            # Glorot uniform, the default of the reference's tf.layers.dense
            # (google-research/electra gives this layer no initializer).
            self.embeddings_project = keras.layers.Dense(
                hidden,
                kernel_initializer="glorot_uniform",
                dtype=self.dtype_policy,
                name="embeddings_project",
            )
        self.transformer_layers = [
            ElectraTransformerLayer(
                num_heads=heads,
                intermediate_size=inner,
                hidden_act=config.hidden_act,
                dropout=config.dropout,
                layer_norm_epsilon=config.layer_norm_epsilon,
                kernel_initializer=init,
                dtype=self.dtype_policy,
                name=f"layer_{i}",
            )
            for i in range(layers)
        ]

    def build(self, input_shape=None):
        if not self.embeddings.built:
            self.embeddings.build()
        if self.embeddings_project is not None:
            self.embeddings_project.build((None, None, self.config.embedding_size))
        for layer in self.transformer_layers:
            layer.build((None, None, self.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        return self.hidden_states(inputs, training=training)[-1]

    def hidden_states(self, inputs, training=None) -> list:
        """The input to the first layer and each layer's output (what a
        per-layer probe reads), `num_layers + 1` tensors [batch, length, hidden]."""
        if not self.built:  # called directly, not through __call__, which builds first
            self.build()
        x = self.embeddings(inputs["input_ids"], inputs["segment_ids"], training=training)
        if self.embeddings_project is not None:
            x = self.embeddings_project(x)
        states = [x]
        bias = attention_bias(inputs["input_mask"], x.dtype)
        for layer in self.transformer_layers:
            states.append(layer(states[-1], bias=bias, training=training))
        return states

    def get_config(self):
        return {"config": self.config.to_dict(), "tower": self.tower, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ElectraConfig.from_dict(config.pop("config")), **config)
