"""Gradient-disentangled embedding sharing (DeBERTa-v3) for the discriminator."""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.modeling.embeddings import ElectraEmbeddings


class DisentangledEmbeddings(keras.layers.Layer):
    """The discriminator's view of embeddings shared with the generator.

    With plain sharing the generator's MLM loss and the discriminator's
    replaced-token loss pull the one token table in opposite directions: MLM
    clusters tokens by what may replace them, detection separates exactly
    those. Here the discriminator reads the shared token table through a stop
    gradient plus a zero-initialised residual of its own (He et al. 2021,
    DeBERTa-v3 "GDES"): the table learns from the generator only, the
    residual from the discriminator only. Position and segment embeddings and
    the LayerNorm stay shared and learn from both. It lives only inside a
    pre-trainer: the saved discriminator folds the residual into a plain
    `ElectraEmbeddings` (see `ElectraPretrainer.export_towers`).

    Args:
        shared: The generator's `ElectraEmbeddings`.

    Call args:
        input_ids: int [batch, length].
        segment_ids: int [batch, length].

    Returns:
        [batch, length, embedding_size], as `ElectraEmbeddings`.

    Example:
        >>> shared = ElectraEmbeddings(ElectraConfig.from_preset("tiny", vocab_size=100))
        >>> layer = DisentangledEmbeddings(shared)
        >>> layer(np.ones((2, 8), "int32"), np.zeros((2, 8), "int32")).shape  # doctest: +SKIP
        (2, 8, 32)
    """

    def __init__(self, shared: ElectraEmbeddings, **kwargs):
        kwargs.setdefault("name", "disentangled_embeddings")
        super().__init__(**kwargs)
        self.shared = shared
        self.config = shared.config

    def build(self, input_shape=None):
        if not self.shared.built:
            self.shared.build()
        self.token_residual = self.add_weight(
            name="token_residual",
            shape=(self.config.vocab_size, self.config.embedding_size),
            initializer="zeros",
        )
        self.built = True

    def token_table(self) -> tf.Tensor:
        """The discriminator's effective token table (shared + residual), float32."""
        return tf.convert_to_tensor(self.shared.token_embedding.embeddings) + tf.convert_to_tensor(
            self.token_residual
        )

    def call(self, input_ids, segment_ids, training=None):
        shared = self.shared
        table = tf.stop_gradient(tf.convert_to_tensor(shared.token_embedding.embeddings))
        ids = tf.cast(input_ids, tf.int32)
        tokens = tf.gather(table, ids) + tf.gather(tf.convert_to_tensor(self.token_residual), ids)
        tokens = tf.cast(tokens, self.compute_dtype)
        x = tokens + shared.position_embedding(tokens) + shared.segment_embedding(segment_ids)
        x = shared.layer_norm(x)
        return shared.dropout(x, training=training)
