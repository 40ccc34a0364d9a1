"""Token + position + segment embeddings with LayerNorm, shared by both towers."""

from __future__ import annotations

import keras
from keras_hub.layers import PositionEmbedding

from electra_tf.config import ElectraConfig
from electra_tf.kernels import Dropout, LayerNorm
from electra_tf.modeling.initializers import truncated_normal


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraEmbeddings(keras.layers.Layer):
    """ELECTRA's embedding block (google-research/electra `electra/embeddings`).

    Sums token, learned position and segment embeddings of width
    `embedding_size`, then applies LayerNorm and dropout. The token table is a
    `ReversibleEmbedding` so the generator's MLM head can reuse it as its
    output projection (weight tying).

    Args:
        config: The model's `ElectraConfig`.

    Example:
        >>> layer = ElectraEmbeddings(ElectraConfig.from_preset("tiny", vocab_size=100))
        >>> layer(np.ones((2, 8), "int32"), np.zeros((2, 8), "int32")).shape  # doctest: +SKIP
        (2, 8, 32)
    """

    def __init__(self, config: ElectraConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        init = truncated_normal(config.initializer_range)
        self.token_embedding = keras.layers.ReversibleEmbedding(
            config.vocab_size,
            config.embedding_size,
            embeddings_initializer=init,
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.position_embedding = PositionEmbedding(
            sequence_length=config.max_position_embeddings,
            initializer=init,
            dtype=self.dtype_policy,
            name="position_embedding",
        )
        self.segment_embedding = keras.layers.Embedding(
            config.type_vocab_size,
            config.embedding_size,
            embeddings_initializer=init,
            dtype=self.dtype_policy,
            name="segment_embedding",
        )
        self.layer_norm = LayerNorm(
            epsilon=config.layer_norm_epsilon, dtype=self.dtype_policy, name="embeddings_layer_norm"
        )
        self.dropout = Dropout(config.dropout, dtype=self.dtype_policy, name="dropout")

    def build(self, input_shape=None):
        self.token_embedding.build((None, None))
        self.position_embedding.build((None, None, self.config.embedding_size))
        self.segment_embedding.build((None, None))
        self.layer_norm.build((None, None, self.config.embedding_size))
        self.built = True

    def call(self, input_ids, segment_ids, training=None):
        tokens = self.token_embedding(input_ids)
        x = tokens + self.position_embedding(tokens) + self.segment_embedding(segment_ids)
        x = self.layer_norm(x)
        return self.dropout(x, training=training)

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        electra = ElectraConfig.from_dict(config.pop("config"))
        return cls(electra, **config)
