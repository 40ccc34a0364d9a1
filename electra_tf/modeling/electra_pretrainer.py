"""ElectraPretrainer: generator + discriminator with ELECTRA's objective.

One step (google-research/electra `run_pretraining.PretrainingModel`):

1. The generator predicts the original ids at the masked positions; its loss
   is the cross-entropy there (vocab logits only at those N positions).
2. Replacements are sampled from the generator (Gumbel-max at the current
   temperature, no gradient) and written into the unmasked sequence.
3. The discriminator labels every real token: 1 where the id differs from
   the original (a sampled id equal to the original counts as original).
4. loss = gen_weight * MLM loss + disc_weight * sigmoid BCE over real tokens.

The step machinery (global normalisation, all-reduce, clipping, gradient
accumulation) is `StepModel`'s.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.kernels import sparse_softmax_cross_entropy
from electra_tf.modeling.discriminator import ElectraDiscriminator
from electra_tf.modeling.disentangled_embeddings import DisentangledEmbeddings
from electra_tf.modeling.embeddings import ElectraEmbeddings
from electra_tf.modeling.generator import ElectraGenerator
from electra_tf.modeling.pretrain_helpers import sample_from_softmax, scatter_positions
from electra_tf.modeling.pretrainer_base import PretrainerBase, hidden_spread

EMBEDDING_SHARING = ("shared", "disentangled", "none")


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraPretrainer(PretrainerBase):
    """ELECTRA replaced-token-detection pre-training.

    Args:
        config: The model's `ElectraConfig`.
        gen_weight: Weight of the generator's MLM loss (1.0).
        disc_weight: Weight of the discriminator's loss (50.0).
        temperature: Sampling temperature for replacements (1.0).
        temperature_start: Temperature at step 0 when annealing (a curriculum
            as Fast-ELECTRA's: a high temperature gives the discriminator
            easier, more random replacements first). None: no annealing.
        temperature_anneal_steps: Steps of the linear anneal from
            `temperature_start` to `temperature`.
        embedding_sharing: "shared" (the paper: one token, position and
            segment table for both towers), "disentangled" (DeBERTa-v3's
            GDES: the discriminator reads stop_gradient(shared) + its own
            zero-initialised residual) or "none" (separate embeddings).
        disc_prior: The share of tokens expected to be replaced at
            initialisation (about the mask rate: an untrained generator
            almost never samples the original). The replaced-token head's
            output bias starts at its logit. None: a zero bias, as the
            reference. Adam moves one bias by about the learning rate per
            step, so from zero the base rate's logit (-1.7 for 15%) is
            thousands of steps away, and the encoder learns it instead by
            pushing every hidden state the same way: its outputs become the
            same for every token within a hundred steps (the collapse
            `hidden_spread` shows).
        **kwargs: `seed`, `grad_accum_steps`, `clip_norm`, `jit_compile` (see
            `StepModel`) and Keras' `name`, `dtype`.

    Inputs to `fit` / `evaluate`: dicts with int `input_ids` (masked),
    `input_mask`, `segment_ids` [B, L], `masked_lm_positions`,
    `masked_lm_ids` [B, N] and float `masked_lm_weights` [B, N].

    Example:
        >>> model = ElectraPretrainer(ElectraConfig.from_preset("tiny", vocab_size=1000))
        >>> model.compile(optimizer=create_optimizer("adamw", 5e-4, 10, 100))  # doctest: +SKIP
        >>> model.fit(dataset, steps_per_epoch=100, epochs=1)  # doctest: +SKIP
    """

    def __init__(
        self,
        config: ElectraConfig,
        gen_weight: float = 1.0,
        disc_weight: float = 50.0,
        temperature: float = 1.0,
        temperature_start: float | None = None,
        temperature_anneal_steps: int = 0,
        embedding_sharing: str = "shared",
        disc_prior: float | None = None,
        **kwargs,
    ):
        kwargs.setdefault("name", "electra_pretrainer")
        super().__init__(**kwargs)
        if embedding_sharing not in EMBEDDING_SHARING:
            raise ValueError(
                f"embedding_sharing must be one of {EMBEDDING_SHARING}, got {embedding_sharing!r}"
            )
        if temperature <= 0 or (temperature_start is not None and temperature_start <= 0):
            raise ValueError("temperatures must be positive")
        if disc_prior is not None and not 0.0 < disc_prior < 1.0:
            raise ValueError(f"disc_prior must be in (0, 1), got {disc_prior}")
        self.config = config
        self.gen_weight = float(gen_weight)
        self.disc_weight = float(disc_weight)
        self.temperature = float(temperature)
        self.temperature_start = None if temperature_start is None else float(temperature_start)
        self.temperature_anneal_steps = int(temperature_anneal_steps)
        self.embedding_sharing = embedding_sharing
        self.disc_prior = None if disc_prior is None else float(disc_prior)
        policy = self.dtype_policy
        if embedding_sharing == "shared":
            self.discriminator = ElectraDiscriminator(config, dtype=policy)
            gen_embeddings = self.discriminator.embeddings
        elif embedding_sharing == "disentangled":
            gen_embeddings = ElectraEmbeddings(config, dtype=policy, name="embeddings")
            self.discriminator = ElectraDiscriminator(
                config,
                embeddings=DisentangledEmbeddings(gen_embeddings, dtype=policy),
                dtype=policy,
            )
        else:
            self.discriminator = ElectraDiscriminator(config, dtype=policy)
            gen_embeddings = None
        self.generator = ElectraGenerator(config, embeddings=gen_embeddings, dtype=policy)
        self._gen_loss = keras.metrics.Mean(name="gen_loss")
        self._disc_loss = keras.metrics.Mean(name="disc_loss")
        self._gen_accuracy = keras.metrics.Mean(name="gen_accuracy")
        self._sampled_accuracy = keras.metrics.Mean(name="sampled_accuracy")
        self._disc_accuracy = keras.metrics.Mean(name="disc_accuracy")
        self._disc_precision = keras.metrics.Precision(name="disc_precision")
        self._disc_recall = keras.metrics.Recall(name="disc_recall")
        self._disc_auc = keras.metrics.AUC(num_thresholds=200, name="disc_auc")
        self._replaced_fraction = keras.metrics.Mean(name="replaced_fraction")
        self._hidden_spread = keras.metrics.Mean(name="hidden_spread")

    def build(self, input_shape=None):
        self.discriminator.build()
        self.generator.build()
        if self.disc_prior is not None:
            bias = self.discriminator.head.dense_prediction.bias
            bias.assign(tf.fill(bias.shape, math.log(self.disc_prior / (1.0 - self.disc_prior))))
        self.built = True

    def _metric_list(self):
        return [
            self._gen_loss,
            self._disc_loss,
            self._gen_accuracy,
            self._sampled_accuracy,
            self._disc_accuracy,
            self._disc_precision,
            self._disc_recall,
            self._disc_auc,
            self._replaced_fraction,
            self._hidden_spread,
        ]

    def _total_loss(self, logs):
        return self.gen_weight * logs["gen_loss"] + self.disc_weight * logs["disc_loss"]

    def sampling_temperature(self, step) -> tf.Tensor:
        """The replacement temperature at `step` (the curriculum, or the constant)."""
        if self.temperature_start is None or self.temperature_anneal_steps <= 0 or step is None:
            return tf.constant(self.temperature, tf.float32)
        progress = tf.minimum(tf.cast(step, tf.float32) / float(self.temperature_anneal_steps), 1.0)
        return self.temperature_start + (self.temperature - self.temperature_start) * progress

    # --- forward ------------------------------------------------------------------

    def _forward(self, batch, norms, seed, training, row_offset=0, step=None):
        num_masked, num_tokens = norms["num_masked"], norms["num_tokens"]
        """Both towers on one (micro-)batch; losses are shares of the global mean."""
        input_ids = tf.cast(batch["input_ids"], tf.int32)
        input_mask = tf.cast(batch["input_mask"], tf.int32)
        segment_ids = tf.cast(batch["segment_ids"], tf.int32)
        positions = tf.cast(batch["masked_lm_positions"], tf.int32)
        mlm_ids = tf.cast(batch["masked_lm_ids"], tf.int32)
        mlm_weights = tf.cast(batch["masked_lm_weights"], tf.float32)

        mlm_logits = self.generator(
            {
                "input_ids": input_ids,
                "input_mask": input_mask,
                "segment_ids": segment_ids,
                "masked_lm_positions": positions,
            },
            training=training,
        )
        mlm_ce = sparse_softmax_cross_entropy(mlm_ids, mlm_logits)
        gen_sum = tf.reduce_sum(mlm_ce * mlm_weights)

        temperature = self.sampling_temperature(step)
        sampled = sample_from_softmax(mlm_logits, seed, temperature, row_offset)
        original, _ = scatter_positions(input_ids, mlm_ids, positions, mlm_weights)
        corrupted, _ = scatter_positions(original, sampled, positions, mlm_weights)
        labels = tf.cast(tf.not_equal(corrupted, original), tf.float32)

        hidden = self.discriminator.encode(
            {"input_ids": corrupted, "input_mask": input_mask, "segment_ids": segment_ids},
            training=training,
        )
        disc_logits = tf.cast(self.discriminator.head(hidden), tf.float32)
        token_weights = tf.cast(input_mask, tf.float32)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=disc_logits)
        disc_sum = tf.reduce_sum(bce * token_weights)

        loss = self.gen_weight * tf.math.divide_no_nan(
            gen_sum, num_masked
        ) + self.disc_weight * tf.math.divide_no_nan(disc_sum, num_tokens)
        out = {
            "loss": loss,
            "gen_sum": gen_sum,
            "disc_sum": disc_sum,
            "mlm_logits": mlm_logits,
            "mlm_ids": mlm_ids,
            "mlm_weights": mlm_weights,
            "sampled": sampled,
            "labels": labels,
            "disc_logits": disc_logits,
            "token_weights": token_weights,
        }
        if not training:  # the collapse signal costs a pass over [B, L, H]: eval only
            out["hidden_spread"] = hidden_spread(hidden, token_weights)
        return out

    def call(self, inputs, training=False):
        out = super().call(inputs, training)
        return {"mlm_logits": out["mlm_logits"], "disc_logits": out["disc_logits"]}

    # --- metrics --------------------------------------------------------------------

    def _update_metrics(self, out) -> None:
        w = out["mlm_weights"]
        tw = out["token_weights"]
        n_masked = tf.reduce_sum(w)
        n_tokens = tf.reduce_sum(tw)
        self._gen_loss.update_state(tf.math.divide_no_nan(out["gen_sum"], n_masked), n_masked)
        self._disc_loss.update_state(tf.math.divide_no_nan(out["disc_sum"], n_tokens), n_tokens)
        preds = tf.argmax(out["mlm_logits"], axis=-1, output_type=tf.int32)
        self._gen_accuracy.update_state(tf.cast(preds == out["mlm_ids"], tf.float32), w)
        self._sampled_accuracy.update_state(
            tf.cast(out["sampled"] == out["mlm_ids"], tf.float32), w
        )
        probs = tf.sigmoid(out["disc_logits"])
        labels = out["labels"]
        self._disc_accuracy.update_state(
            tf.cast(tf.cast(probs > 0.5, tf.float32) == labels, tf.float32), tw
        )
        self._disc_precision.update_state(labels, probs, sample_weight=tw)
        self._disc_recall.update_state(labels, probs, sample_weight=tw)
        self._disc_auc.update_state(labels, probs, sample_weight=tw)
        self._replaced_fraction.update_state(labels, tw)
        if "hidden_spread" in out:
            self._hidden_spread.update_state(*out["hidden_spread"])

    # --- towers ---------------------------------------------------------------------

    def export_towers(self) -> dict[str, keras.Model]:
        """Standalone discriminator and generator (a disentangled table folded in)."""
        if self.embedding_sharing != "disentangled":
            return {"discriminator": self.discriminator, "generator": self.generator}
        plain = ElectraDiscriminator(self.config)
        plain.build()
        copy_discriminator(self.discriminator, plain)
        return {"discriminator": plain, "generator": self.generator}

    def get_config(self):
        return {
            **super().get_config(),
            "config": self.config.to_dict(),
            "gen_weight": self.gen_weight,
            "disc_weight": self.disc_weight,
            "temperature": self.temperature,
            "temperature_start": self.temperature_start,
            "temperature_anneal_steps": self.temperature_anneal_steps,
            "embedding_sharing": self.embedding_sharing,
            "disc_prior": self.disc_prior,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ElectraConfig.from_dict(config.pop("config")), **config)


def _assign_layer(target: keras.layers.Layer, source: keras.layers.Layer) -> None:
    for t, o in zip(target.weights, source.weights, strict=True):
        if tuple(t.shape) != tuple(o.shape):
            raise ValueError(
                f"{t.path} has shape {tuple(t.shape)} but the source's {o.path} has "
                f"{tuple(o.shape)}"
            )
        t.assign(tf.convert_to_tensor(o))


def copy_discriminator(
    source: ElectraDiscriminator, target: ElectraDiscriminator, keep_shared_table: bool = False
) -> None:
    """Copies a discriminator's weights; either side may read disentangled embeddings.

    A disentangled source is folded (token table = shared + residual). Into a
    disentangled target, the token table goes to the shared table (residual
    0), or, with `keep_shared_table` (the generator already put its table
    there), into the residual as the difference, so both towers keep theirs.
    """
    src_emb, dst_emb = source.embeddings, target.embeddings
    src_plain = getattr(src_emb, "shared", src_emb)
    dst_plain = getattr(dst_emb, "shared", dst_emb)
    if isinstance(src_emb, DisentangledEmbeddings):
        token = src_emb.token_table()
    else:
        token = tf.convert_to_tensor(src_plain.token_embedding.embeddings)
    if tuple(token.shape) != tuple(dst_plain.token_embedding.embeddings.shape):
        raise ValueError(
            f"token embeddings have shape {tuple(token.shape)} but the model's are "
            f"{tuple(dst_plain.token_embedding.embeddings.shape)}"
        )
    if isinstance(dst_emb, DisentangledEmbeddings):
        if keep_shared_table:
            shared = tf.convert_to_tensor(dst_plain.token_embedding.embeddings)
            dst_emb.token_residual.assign(token - shared)
        else:
            dst_plain.token_embedding.embeddings.assign(token)
            dst_emb.token_residual.assign(tf.zeros_like(token))
    else:
        dst_plain.token_embedding.embeddings.assign(token)
    pairs = [
        (dst_plain.position_embedding, src_plain.position_embedding),
        (dst_plain.segment_embedding, src_plain.segment_embedding),
        (dst_plain.layer_norm, src_plain.layer_norm),
        (target.head, source.head),
    ]
    src_project = source.backbone.embeddings_project
    dst_project = target.backbone.embeddings_project
    if (src_project is None) != (dst_project is None):
        raise ValueError("one discriminator has an embedding projection and the other not")
    if dst_project is not None:
        pairs.append((dst_project, src_project))
    src_layers = source.backbone.transformer_layers
    dst_layers = target.backbone.transformer_layers
    if len(src_layers) != len(dst_layers):
        raise ValueError(
            f"{len(src_layers)} Transformer layers in the source, {len(dst_layers)} here"
        )
    pairs += list(zip(dst_layers, src_layers))
    for dst, src in pairs:
        _assign_layer(dst, src)


def copy_generator(source: ElectraGenerator, target: ElectraGenerator) -> None:
    """Copies a generator's weights (its embeddings included) into another of its size."""
    _assign_layer(target, source)
