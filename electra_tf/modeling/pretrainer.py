"""ElectraPretrainer: generator + discriminator with ELECTRA's train step.

One step (google-research/electra `run_pretraining.PretrainingModel`):

1. The generator predicts the original ids at the masked positions; its loss
   is the cross-entropy there (vocab logits only at those N positions).
2. Replacements are sampled from the generator (Gumbel-max at `temperature`,
   no gradient) and written into the unmasked sequence.
3. The discriminator labels every real token: 1 where the id differs from
   the original (a sampled id equal to the original counts as original).
4. loss = gen_weight * MLM loss + disc_weight * sigmoid BCE over real tokens.

Losses are normalised by GLOBAL counts (masked tokens, real tokens) gathered
across replicas before the forward pass, so each replica's loss is its share
of the global mean and summed gradients are the global-batch gradient,
whatever the replica count. Gradients are all-reduced here, clipped to the
global norm once, then applied (PITFALLS.md). Replacement sampling is keyed
by (seed, step, global example index), so it is reproducible, resumable with
no extra state, and the same whatever the number of replicas or micro-batches.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.modeling.discriminator import ElectraDiscriminator
from electra_tf.modeling.generator import ElectraGenerator
from electra_tf.modeling.pretrain_helpers import sample_gumbel_max, scatter_positions

_SUM = tf.distribute.ReduceOp.SUM


def _replica_id() -> tf.Tensor:
    ctx = tf.distribute.get_replica_context()
    rid = 0 if ctx is None else ctx.replica_id_in_sync_group
    return tf.cast(rid, tf.int32)


def _all_reduce_sum(value):
    ctx = tf.distribute.get_replica_context()
    return value if ctx is None else ctx.all_reduce(_SUM, value)


class ElectraPretrainer(keras.Model):
    """ELECTRA replaced-token-detection pre-training.

    Args:
        config: The model's `ElectraConfig`.
        gen_weight: Weight of the generator's MLM loss (1.0).
        disc_weight: Weight of the discriminator's loss (50.0).
        temperature: Sampling temperature for replacements (1.0).
        seed: Base seed of the replacement sampling.
        grad_accum_steps: Split each batch into this many micro-batches and
            apply one update with their summed gradients.
        clip_norm: Global-norm gradient clip (1.0); 0 disables it.
        jit_compile: XLA-compile the forward+backward pass (no collectives
            inside, so it composes with any strategy).

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
        seed: int = 0,
        grad_accum_steps: int = 1,
        clip_norm: float = 1.0,
        jit_compile: bool = False,
        **kwargs,
    ):
        kwargs.setdefault("name", "electra_pretrainer")
        super().__init__(**kwargs)
        if grad_accum_steps < 1:
            raise ValueError(f"grad_accum_steps must be >= 1, got {grad_accum_steps}")
        self.config = config
        self.gen_weight = float(gen_weight)
        self.disc_weight = float(disc_weight)
        self.temperature = float(temperature)
        self.seed = int(seed)
        self.grad_accum_steps = int(grad_accum_steps)
        self.clip_norm = float(clip_norm)
        self.jit_inner = bool(jit_compile)
        self.discriminator = ElectraDiscriminator(config, dtype=self.dtype_policy)
        self.generator = ElectraGenerator(
            config, embeddings=self.discriminator.embeddings, dtype=self.dtype_policy
        )
        self._gen_loss = keras.metrics.Mean(name="gen_loss")
        self._disc_loss = keras.metrics.Mean(name="disc_loss")
        self._gen_accuracy = keras.metrics.Mean(name="gen_accuracy")
        self._sampled_accuracy = keras.metrics.Mean(name="sampled_accuracy")
        self._disc_accuracy = keras.metrics.Mean(name="disc_accuracy")
        self._disc_precision = keras.metrics.Precision(name="disc_precision")
        self._disc_recall = keras.metrics.Recall(name="disc_recall")
        self._disc_auc = keras.metrics.AUC(num_thresholds=200, name="disc_auc")
        self._replaced_fraction = keras.metrics.Mean(name="replaced_fraction")
        self._grad_fn = tf.function(
            self._loss_and_grads, jit_compile=self.jit_inner, reduce_retracing=True
        )

    # --- building --------------------------------------------------------------

    def build(self, input_shape=None):
        self.discriminator.build()
        self.generator.build()
        self.built = True

    def build_all(self) -> None:
        """Creates model, optimizer and metric variables (call in the strategy scope)."""
        if not self.built:
            self.build()
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras' version pulls a batch off the iterator under a strategy (which
        # would shift the data by one batch per fit call) and fails under
        # MultiWorkerMirroredStrategy (keras-team/keras#20329). This model is
        # built explicitly by build_all() in the strategy scope instead.
        if not self.built:
            raise ValueError("call build_all() in the strategy scope before fit()")

    @property
    def metrics(self):
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
        ]

    # --- forward ------------------------------------------------------------------

    def _forward(self, batch, seed, num_masked, num_tokens, training, row_offset=0):
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
        mlm_ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=mlm_ids, logits=mlm_logits)
        gen_sum = tf.reduce_sum(mlm_ce * mlm_weights)

        sampled = sample_gumbel_max(mlm_logits, seed, self.temperature, row_offset)
        original, _ = scatter_positions(input_ids, mlm_ids, positions, mlm_weights)
        corrupted, _ = scatter_positions(original, sampled, positions, mlm_weights)
        labels = tf.cast(tf.not_equal(corrupted, original), tf.float32)

        disc_logits = tf.cast(
            self.discriminator(
                {"input_ids": corrupted, "input_mask": input_mask, "segment_ids": segment_ids},
                training=training,
            ),
            tf.float32,
        )
        token_weights = tf.cast(input_mask, tf.float32)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=disc_logits)
        disc_sum = tf.reduce_sum(bce * token_weights)

        loss = self.gen_weight * tf.math.divide_no_nan(
            gen_sum, num_masked
        ) + self.disc_weight * tf.math.divide_no_nan(disc_sum, num_tokens)
        return {
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

    def _loss_and_grads(self, batch, seed, num_masked, num_tokens, row_offset):
        with tf.GradientTape() as tape:
            out = self._forward(
                batch, seed, num_masked, num_tokens, training=True, row_offset=row_offset
            )
            loss = out["loss"]
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                loss = self.optimizer.scale_loss(loss)
        grads = tape.gradient(loss, self.trainable_variables)
        return grads, out

    def call(self, inputs, training=False):
        num_masked = tf.reduce_sum(tf.cast(inputs["masked_lm_weights"], tf.float32))
        num_tokens = tf.reduce_sum(tf.cast(inputs["input_mask"], tf.float32))
        seed = tf.constant([0, self.seed], tf.int32)
        out = self._forward(inputs, seed, num_masked, num_tokens, training)
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

    def _logs(self):
        logs = {m.name: m.result() for m in self.metrics}
        logs["loss"] = self.gen_weight * logs["gen_loss"] + self.disc_weight * logs["disc_loss"]
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces per-replica logs with a concat that rejects scalars
            # under MWMS (tensorflow/tensorflow#72388): give them a batch axis.
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    # --- steps -----------------------------------------------------------------------

    def _global_counts(self, data):
        num_masked = _all_reduce_sum(tf.reduce_sum(tf.cast(data["masked_lm_weights"], tf.float32)))
        num_tokens = _all_reduce_sum(tf.reduce_sum(tf.cast(data["input_mask"], tf.float32)))
        return num_masked, num_tokens

    def train_step(self, data):
        num_masked, num_tokens = self._global_counts(data)
        step = tf.cast(self.optimizer.iterations, tf.int32)
        seed = tf.stack([step, tf.constant(self.seed, tf.int32)])
        local_batch = tf.shape(data["input_ids"])[0]
        micro_size = local_batch // self.grad_accum_steps
        first_row = _replica_id() * local_batch  # this replica's rows of the global batch
        if self.grad_accum_steps == 1:
            micro_batches = [data]
        else:
            split = {k: tf.split(v, self.grad_accum_steps, axis=0) for k, v in data.items()}
            micro_batches = [
                {k: v[i] for k, v in split.items()} for i in range(self.grad_accum_steps)
            ]
        grads = None
        for i, micro in enumerate(micro_batches):
            g, out = self._grad_fn(micro, seed, num_masked, num_tokens, first_row + i * micro_size)
            # Embedding gradients come as IndexedSlices with one slice per
            # token occurrence; the global norm of those slices is not the norm
            # of the gradient (repeated ids are not summed), so clip on dense.
            g = [tf.convert_to_tensor(x) for x in g]
            grads = g if grads is None else [a + b for a, b in zip(grads, g)]
            self._update_metrics(out)
        grads = _all_reduce_sum(grads)
        if self.clip_norm > 0:
            clip = self.clip_norm
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                # Gradients are scaled by the loss scale: clip at the scaled norm.
                clip = self.optimizer.scale_loss(tf.constant(clip, tf.float32))
            grads, _ = tf.clip_by_global_norm(grads, clip)
        self.optimizer.apply(grads, self.trainable_variables)
        return self._logs()

    def test_step(self, data):
        num_masked, num_tokens = self._global_counts(data)
        seed = tf.stack([tf.constant(-1, tf.int32), tf.constant(self.seed, tf.int32)])
        first_row = _replica_id() * tf.shape(data["input_ids"])[0]
        out = self._forward(
            data, seed, num_masked, num_tokens, training=False, row_offset=first_row
        )
        self._update_metrics(out)
        return self._logs()

    def get_config(self):
        return {
            "config": self.config.to_dict(),
            "gen_weight": self.gen_weight,
            "disc_weight": self.disc_weight,
            "temperature": self.temperature,
            "seed": self.seed,
            "grad_accum_steps": self.grad_accum_steps,
            "clip_norm": self.clip_norm,
            "jit_compile": self.jit_inner,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ElectraConfig.from_dict(config.pop("config")), **config)
