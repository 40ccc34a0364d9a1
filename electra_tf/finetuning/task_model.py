"""An ELECTRA encoder with a fine-tuning head: classification, regression, span or tagging."""

from __future__ import annotations

import keras

from electra_tf.config import ElectraConfig
from electra_tf.modeling.backbone import ElectraBackbone
from electra_tf.modeling.classification_head import ClassificationHead
from electra_tf.modeling.span_head import SpanHead
from electra_tf.modeling.tagging_head import TaggingHead

KINDS = ("classification", "regression", "span", "tagging")


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraTaskModel(keras.Model):
    """The discriminator's encoder (named "electra", so pre-trained weights
    load by name) under one task head.

    Args:
        config: The encoder's `ElectraConfig`.
        kind: "classification", "regression", "span" or "tagging".
        num_labels: Classes or tags (ignored for regression and span).
        with_null: Span only: add SQuAD 2.0's no-answer classifier.

    Call returns a dict: `logits` ([batch, labels]; [batch, length, labels]
    for tagging; [batch, 1] for regression) or, for span,
    `start_logits`/`end_logits` (+ `null_logit`).

    Example:
        >>> config = ElectraConfig.from_preset("tiny", vocab_size=100)
        >>> model = ElectraTaskModel(config, "classification", num_labels=2)
        >>> ids = np.ones((2, 8), "int32")
        >>> model({"input_ids": ids, "input_mask": ids,
        ...        "segment_ids": 0 * ids})["logits"].shape  # doctest: +SKIP
        (2, 2)
    """

    def __init__(
        self,
        config: ElectraConfig,
        kind: str,
        num_labels: int = 2,
        with_null: bool = False,
        **kwargs,
    ):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        kwargs.setdefault("name", f"electra_{kind}")
        super().__init__(**kwargs)
        self.config = config
        self.kind = kind
        self.num_labels = 1 if kind == "regression" else num_labels
        self.with_null = with_null
        self.backbone = ElectraBackbone(
            config, "discriminator", dtype=self.dtype_policy, name="electra"
        )
        common = {"initializer_range": config.initializer_range, "dtype": self.dtype_policy}
        if kind in ("classification", "regression"):
            self.head = ClassificationHead(
                config.hidden_size,
                self.num_labels,
                dropout=config.dropout,
                hidden_act=config.hidden_act,
                name="classifier",
                **common,
            )
        elif kind == "span":
            self.head = SpanHead(
                config.hidden_size, with_null, config.hidden_act, name="qa_head", **common
            )
        else:
            self.head = TaggingHead(
                self.num_labels, dropout=config.dropout, name="tagger", **common
            )

    def build(self, input_shape=None):
        self.backbone.build()
        self.head.build((None, None, self.config.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        sequence = self.backbone(inputs, training=training)
        if self.kind == "span":
            return self.head(sequence)
        return {"logits": self.head(sequence, training=training)}

    def get_config(self):
        return {
            "config": self.config.to_dict(),
            "kind": self.kind,
            "num_labels": self.num_labels,
            "with_null": self.with_null,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ElectraConfig.from_dict(config.pop("config")), **config)
