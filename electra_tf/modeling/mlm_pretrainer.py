"""MlmPretrainer: BERT's masked-language-model objective on ELECTRA's encoder.

The baseline ELECTRA is measured against: the same encoder (the
discriminator's sizes and weight names), data, optimizer and logging, but the
encoder itself predicts the masked tokens (BERT's 80/10/10 masking, done by
the input pipeline) and there is no generator. The encoder is saved as a
discriminator tower, so an MLM-pretrained model fine-tunes, exports and
converts exactly like an ELECTRA one (its replaced-token head is left at
initialisation and never used downstream).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.kernels import sparse_softmax_cross_entropy
from electra_tf.modeling.discriminator import ElectraDiscriminator
from electra_tf.modeling.generator import tied_mlm_head
from electra_tf.modeling.pretrainer_base import PretrainerBase, hidden_spread


@keras.saving.register_keras_serializable(package="electra_tf")
class MlmPretrainer(PretrainerBase):
    """Masked-language-model pre-training of the discriminator-sized encoder.

    Args:
        config: The model's `ElectraConfig` (the generator sizes are unused).
        **kwargs: `seed`, `grad_accum_steps`, `clip_norm`, `jit_compile` (see
            `PretrainerBase`) and Keras' `name`, `dtype`.

    Inputs: as `ElectraPretrainer` (`input_ids` already masked by the
    pipeline, `masked_lm_*` naming the originals).

    Example:
        >>> model = MlmPretrainer(ElectraConfig.from_preset("tiny", vocab_size=1000))
        >>> model.build()
        >>> len(model.discriminator.head.trainable_weights)
        0
    """

    def __init__(self, config: ElectraConfig, **kwargs):
        kwargs.setdefault("name", "mlm_pretrainer")
        super().__init__(**kwargs)
        self.config = config
        self.discriminator = ElectraDiscriminator(config, dtype=self.dtype_policy)
        # The replaced-token head is kept only so the saved tower has the
        # discriminator's layout; it takes no part in this objective.
        self.discriminator.head.trainable = False
        self.mlm_head = tied_mlm_head(
            config,
            self.discriminator.embeddings.token_embedding,
            dtype=self.dtype_policy,
            name="mlm_predictions",
        )
        self._mlm_loss = keras.metrics.Mean(name="mlm_loss")
        self._mlm_accuracy = keras.metrics.Mean(name="mlm_accuracy")
        self._hidden_spread = keras.metrics.Mean(name="hidden_spread")

    def build(self, input_shape=None):
        self.discriminator.build()
        self.mlm_head.build((None, None, self.config.hidden_size))
        self.built = True

    def _metric_list(self):
        return [self._mlm_loss, self._mlm_accuracy, self._hidden_spread]

    def _total_loss(self, logs):
        return logs["mlm_loss"]

    def _forward(self, batch, norms, seed, training, row_offset=0, step=None):
        num_masked, num_tokens = norms["num_masked"], norms["num_tokens"]
        del seed, num_tokens, row_offset, step  # no sampling in this objective
        inputs = {
            "input_ids": tf.cast(batch["input_ids"], tf.int32),
            "input_mask": tf.cast(batch["input_mask"], tf.int32),
            "segment_ids": tf.cast(batch["segment_ids"], tf.int32),
        }
        positions = tf.cast(batch["masked_lm_positions"], tf.int32)
        mlm_ids = tf.cast(batch["masked_lm_ids"], tf.int32)
        mlm_weights = tf.cast(batch["masked_lm_weights"], tf.float32)
        hidden = self.discriminator.encode(inputs, training=training)
        logits = tf.cast(self.mlm_head(hidden, mask_positions=positions), tf.float32)
        ce = sparse_softmax_cross_entropy(mlm_ids, logits)
        mlm_sum = tf.reduce_sum(ce * mlm_weights)
        out = {
            "loss": tf.math.divide_no_nan(mlm_sum, num_masked),
            "mlm_sum": mlm_sum,
            "mlm_logits": logits,
            "mlm_ids": mlm_ids,
            "mlm_weights": mlm_weights,
        }
        if not training:
            out["hidden_spread"] = hidden_spread(hidden, tf.cast(inputs["input_mask"], tf.float32))
        return out

    def call(self, inputs, training=False):
        return {"mlm_logits": super().call(inputs, training)["mlm_logits"]}

    def _update_metrics(self, out) -> None:
        w = out["mlm_weights"]
        n_masked = tf.reduce_sum(w)
        self._mlm_loss.update_state(tf.math.divide_no_nan(out["mlm_sum"], n_masked), n_masked)
        preds = tf.argmax(out["mlm_logits"], axis=-1, output_type=tf.int32)
        self._mlm_accuracy.update_state(tf.cast(preds == out["mlm_ids"], tf.float32), w)
        if "hidden_spread" in out:
            self._hidden_spread.update_state(*out["hidden_spread"])

    def export_towers(self) -> dict[str, keras.Model]:
        return {"discriminator": self.discriminator}

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ElectraConfig.from_dict(config.pop("config")), **config)
