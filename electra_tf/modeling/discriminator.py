"""ELECTRA's discriminator: encoder + replaced-token-detection head."""

from __future__ import annotations

import keras

from electra_tf.config import ElectraConfig
from electra_tf.modeling.backbone import ElectraBackbone
from electra_tf.modeling.embeddings import ElectraEmbeddings
from electra_tf.modeling.replaced_token_head import ReplacedTokenHead


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraDiscriminator(keras.Model):
    """The model fine-tuning starts from (Hugging Face `ElectraForPreTraining`).

    Args:
        config: The model's `ElectraConfig`.
        embeddings: An `ElectraEmbeddings` to share with a generator.

    Call returns the per-token "replaced" logits [batch, length]; `encode`
    returns the hidden states.

    Example:
        >>> disc = ElectraDiscriminator(ElectraConfig.from_preset("tiny", vocab_size=100))
        >>> ids = np.ones((2, 8), "int32")
        >>> disc({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids}).shape  # doctest: +SKIP
        (2, 8)
    """

    def __init__(
        self, config: ElectraConfig, embeddings: ElectraEmbeddings | None = None, **kwargs
    ):
        kwargs.setdefault("name", "discriminator")
        super().__init__(**kwargs)
        self.config = config
        self.backbone = ElectraBackbone(
            config, "discriminator", embeddings=embeddings, dtype=self.dtype_policy, name="electra"
        )
        self.head = ReplacedTokenHead(
            config.hidden_size,
            config.hidden_act,
            config.initializer_range,
            dtype=self.dtype_policy,
            name="discriminator_predictions",
        )

    @property
    def embeddings(self) -> ElectraEmbeddings:
        return self.backbone.embeddings

    def build(self, input_shape=None):
        self.backbone.build()
        self.head.build((None, None, self.config.hidden_size))
        self.built = True

    def encode(self, inputs, training=None):
        return self.backbone(inputs, training=training)

    def call(self, inputs, training=None):
        return self.head(self.backbone(inputs, training=training))

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ElectraConfig.from_dict(config.pop("config")), **config)
