"""ELECTRA's generator: a narrow encoder + MLM head tied to the token embeddings."""

from __future__ import annotations

import keras
from keras_hub.layers import MaskedLMHead

from electra_tf.config import ElectraConfig
from electra_tf.modeling.backbone import ElectraBackbone
from electra_tf.modeling.embeddings import ElectraEmbeddings
from electra_tf.modeling.initializers import activation, truncated_normal


def tied_mlm_head(config: ElectraConfig, token_embedding, **kwargs) -> MaskedLMHead:
    """BERT's MLM head (dense to `embedding_size`, activation, LayerNorm) whose
    output projection is the transposed `token_embedding` table plus a bias."""
    return MaskedLMHead(
        vocabulary_size=config.vocab_size,
        token_embedding=token_embedding,
        intermediate_activation=activation(config.hidden_act),
        layer_norm_epsilon=config.layer_norm_epsilon,
        kernel_initializer=truncated_normal(config.initializer_range),
        **kwargs,
    )


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraGenerator(keras.Model):
    """A masked language model (Hugging Face `ElectraForMaskedLM`).

    The MLM head (dense to `embedding_size`, activation, LayerNorm, then the
    transposed token embedding plus a bias) is applied only at
    `masked_lm_positions`, so vocab logits cost [batch, N, vocab], not
    [batch, length, vocab].

    Args:
        config: The model's `ElectraConfig` (generator sizes are used).
        embeddings: The `ElectraEmbeddings` shared with the discriminator.

    Call args:
        inputs: dict with `input_ids`, `input_mask`, `segment_ids` [batch,
            length] and `masked_lm_positions` [batch, N].

    Returns:
        float32 logits [batch, N, vocab_size].

    Example:
        >>> gen = ElectraGenerator(ElectraConfig.from_preset("tiny", vocab_size=100))
        >>> ids = np.ones((2, 8), "int32")
        >>> gen({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids,
        ...      "masked_lm_positions": np.array([[1, 2], [3, 0]])}).shape  # doctest: +SKIP
        (2, 2, 100)
    """

    def __init__(
        self, config: ElectraConfig, embeddings: ElectraEmbeddings | None = None, **kwargs
    ):
        kwargs.setdefault("name", "generator")
        super().__init__(**kwargs)
        self.config = config
        self.backbone = ElectraBackbone(
            config, "generator", embeddings=embeddings, dtype=self.dtype_policy, name="generator"
        )
        self.head = tied_mlm_head(
            config,
            self.backbone.embeddings.token_embedding,
            dtype=self.dtype_policy,
            name="generator_predictions",
        )

    @property
    def embeddings(self) -> ElectraEmbeddings:
        return self.backbone.embeddings

    def build(self, input_shape=None):
        self.backbone.build()
        self.head.build((None, None, self.config.generator_hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        hidden = self.backbone(inputs, training=training)
        positions = keras.ops.cast(inputs["masked_lm_positions"], "int32")
        return keras.ops.cast(self.head(hidden, mask_positions=positions), "float32")

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ElectraConfig.from_dict(config.pop("config")), **config)
