"""The train/test step every model trained by the engine shares.

A subclass (a pre-training objective, a fine-tuning task model) defines its
forward pass, its loss and its metrics; this base owns what must be right
once for all of them under any strategy:

* Losses are normalised by GLOBAL counts (masked tokens, real tokens,
  examples) gathered across replicas before the forward pass, so each
  replica's loss is its share of the global mean and summed gradients are the
  global-batch gradient, whatever the replica count. Keras 3 does not scale a
  custom step's loss, and `optimizer.apply` all-reduces by SUM.
* Gradients are all-reduced here, clipped to the global norm once, then
  applied with the optimizer's own all-reduce disabled. Keras'
  `global_clipnorm` would clip each replica's partial gradient before the
  all-reduce (measured: an update norm of twice the clip on 2 replicas).
* Gradient accumulation splits the local batch into micro-batches whose
  summed gradients equal the whole batch's.
* A step whose loss or gradients are not finite on any replica is skipped
  (no update, the step counter still moves) and counted in the attached
  `NonFiniteGuard`; the engine stops the run after too many in a row.
* Randomness inside the step is keyed by (seed, step, global row), so it is
  reproducible, resumable with no extra state, and the same whatever the
  number of replicas or micro-batches.
"""

from __future__ import annotations

import keras
import tensorflow as tf

_SUM = tf.distribute.ReduceOp.SUM


def replica_id() -> tf.Tensor:
    """This replica's index in its sync group (0 outside a strategy)."""
    ctx = tf.distribute.get_replica_context()
    rid = 0 if ctx is None else ctx.replica_id_in_sync_group
    return tf.cast(rid, tf.int32)


def all_reduce_sum(value):
    """Sums `value` (a tensor or a list of them) over replicas."""
    ctx = tf.distribute.get_replica_context()
    return value if ctx is None else ctx.all_reduce(_SUM, value)


class StepModel(keras.Model):
    """Shared step machinery of every model the engine trains.

    A subclass defines:

    * `_normalizers(data)`: a dict of this replica's counts (float scalars)
      that losses are divided by; the step sums them over replicas;
    * `_forward(data, norms, seed, training, row_offset, step)`: a dict with
      at least "loss" (this replica's share of the global mean loss);
    * `_update_metrics(out)` and `_metric_list()`;
    * `_total_loss(logs)`: the logged loss from the metric means.

    Metrics named in `EVAL_ONLY_METRICS` are left out of training logs.

    Args:
        seed: Base seed of the randomness inside the step.
        grad_accum_steps: Split each batch into this many micro-batches and
            apply one update with their summed gradients.
        clip_norm: Global-norm gradient clip (1.0); 0 disables it.
        jit_compile: XLA-compile the forward+backward pass (no collectives
            inside, so it composes with any strategy).
    """

    EVAL_ONLY_METRICS: tuple[str, ...] = ()
    # The normaliser that counts real (non-pad) tokens: the log then shows
    # tokens/s, the throughput that padding does not inflate.
    REAL_TOKENS: str | None = None

    def __init__(
        self,
        seed: int = 0,
        grad_accum_steps: int = 1,
        clip_norm: float = 1.0,
        jit_compile: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if grad_accum_steps < 1:
            raise ValueError(f"grad_accum_steps must be >= 1, got {grad_accum_steps}")
        self.seed = int(seed)
        self.grad_accum_steps = int(grad_accum_steps)
        self.clip_norm = float(clip_norm)
        self.jit_inner = bool(jit_compile)
        self._grad_fn = tf.function(
            self._loss_and_grads, jit_compile=self.jit_inner, reduce_retracing=True
        )
        self._real_tokens = keras.metrics.Sum(name="real_tokens") if self.REAL_TOKENS else None

    # --- building --------------------------------------------------------------

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
        extra = [self._real_tokens] if self._real_tokens is not None else []
        return [*self._metric_list(), *extra]

    def get_config(self):
        return {
            "seed": self.seed,
            "grad_accum_steps": self.grad_accum_steps,
            "clip_norm": self.clip_norm,
            "jit_compile": self.jit_inner,
        }

    # --- steps -----------------------------------------------------------------------

    def _loss_and_grads(self, batch, norms, seed, row_offset, step):
        with tf.GradientTape() as tape:
            out = self._forward(batch, norms, seed, training=True, row_offset=row_offset, step=step)
            loss = out["loss"]
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                loss = self.optimizer.scale_loss(loss)
        grads = tape.gradient(loss, self.trainable_variables)
        return grads, out

    def _logs(self, training: bool):
        logs = {m.name: m.result() for m in self.metrics}
        logs["loss"] = self._total_loss(logs)
        if training:  # measured on held-out batches only
            logs = {k: v for k, v in logs.items() if k not in self.EVAL_ONLY_METRICS}
        else:
            logs.pop("real_tokens", None)
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces per-replica logs with a concat that rejects scalars
            # under MWMS (tensorflow/tensorflow#72388): give them a batch axis.
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    def train_step(self, data):
        local_norms = self._normalizers(data)
        norms = all_reduce_sum(local_norms)
        step = tf.cast(self.optimizer.iterations, tf.int32)
        seed = tf.stack([step, tf.constant(self.seed, tf.int32)])
        local_batch = batch_size(data)
        micro_size = local_batch // self.grad_accum_steps
        first_row = replica_id() * local_batch  # this replica's rows of the global batch
        if self.grad_accum_steps == 1:
            micro_batches = [data]
        else:
            parts = [tf.split(v, self.grad_accum_steps) for v in tf.nest.flatten(data)]
            micro_batches = [
                tf.nest.pack_sequence_as(data, [p[i] for p in parts])
                for i in range(self.grad_accum_steps)
            ]
        grads, outs, bad_loss = None, [], tf.constant(0.0)
        for i, micro in enumerate(micro_batches):
            g, out = self._grad_fn(micro, norms, seed, first_row + i * micro_size, step)
            # Embedding gradients come as IndexedSlices with one slice per
            # token occurrence; the global norm of those slices is not the norm
            # of the gradient (repeated ids are not summed), so clip on dense.
            g = [tf.convert_to_tensor(x) for x in g]
            grads = g if grads is None else [a + b for a, b in zip(grads, g)]
            outs.append(out)
            bad_loss += tf.cast(~tf.math.is_finite(out["loss"]), tf.float32)
        # The non-finite flag rides on the gradient all-reduce (one collective),
        # so every replica takes the same branch below.
        *grads, bad_loss = all_reduce_sum([*grads, bad_loss])
        if self.clip_norm > 0:
            clip = self.clip_norm
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                # Gradients are scaled by the loss scale: clip at the scaled norm.
                clip = self.optimizer.scale_loss(tf.constant(clip, tf.float32))
            grads, norm = tf.clip_by_global_norm(grads, clip)
        else:
            norm = tf.linalg.global_norm(grads)
        # Any NaN or Inf in any gradient makes the global norm non-finite: the
        # clip's own norm is the check, at no extra pass over the gradients.
        finite = tf.logical_and(bad_loss == 0, tf.math.is_finite(norm))
        self._apply_if_finite(finite, grads)

        def update_metrics():
            for out in outs:
                self._update_metrics(out)
            if self._real_tokens is not None:  # this replica's; the metric sums replicas
                self._real_tokens.update_state(local_norms[self.REAL_TOKENS])
            return tf.constant(True)

        # A skipped step's NaN would poison the interval's means.
        tf.cond(finite, update_metrics, lambda: tf.constant(False))
        logs = self._logs(training=True)
        if self.nonfinite_guard is not None:
            self.nonfinite_guard.record(finite)
        return logs

    # --- non-finite steps --------------------------------------------------------

    @property
    def nonfinite_guard(self) -> NonFiniteGuard | None:
        return self.__dict__.get("_nonfinite_guard")

    def attach_nonfinite_guard(self, guard: NonFiniteGuard) -> None:
        """Skip (and count in `guard`) updates whose loss or gradients are not finite."""
        # Set around Keras' attribute tracking: the counters belong to the
        # training checkpoint, not to the model's saved weights.
        object.__setattr__(self, "_nonfinite_guard", guard)

    def _apply_if_finite(self, finite, grads) -> None:
        optimizer = self.optimizer
        if self.nonfinite_guard is None or isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ):
            # A loss-scaled run's optimizer skips non-finite steps itself (they
            # are how it finds the scale).
            optimizer.apply(grads, self.trainable_variables)
            return
        variables = self.trainable_variables

        def apply(grads):
            optimizer.apply(grads, variables)
            return tf.constant(True)

        def skip():
            optimizer.iterations.assign_add(1)  # the step happened: data and schedule move on
            return tf.constant(False)

        ctx = tf.distribute.get_replica_context()
        if tf.__internal__.distribute.strategy_supports_no_merge_call():
            tf.cond(finite, lambda: apply(grads), skip)
            return

        # `apply` calls merge_call, which a cond in replica context cannot
        # hold: branch in cross-replica context (as Keras' LossScaleOptimizer).
        def branch(distribution, finite, grads):
            def apply_on_every_replica():
                distribution.extended.call_for_each_replica(apply, args=(grads,))
                return tf.constant(True)

            first = distribution.experimental_local_results(finite)[0]
            tf.cond(first, apply_on_every_replica, skip)

        ctx.merge_call(branch, args=(finite, grads))

    def test_step(self, data):
        norms = all_reduce_sum(self._normalizers(data))
        seed = tf.stack([tf.constant(-1, tf.int32), tf.constant(self.seed, tf.int32)])
        first_row = replica_id() * batch_size(data)
        out = self._forward(data, norms, seed, training=False, row_offset=first_row, step=None)
        self._update_metrics(out)
        return self._logs(training=False)


class NonFiniteGuard(tf.Module):
    """Counts training steps skipped for a non-finite loss or gradient.

    `total` is every skipped step of the run, `consecutive` the current run of
    them (0 after a good step). Both are saved in the training checkpoint.
    Create it in the strategy scope.
    """

    def __init__(self):
        super().__init__(name="nonfinite_guard")
        agg = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.total = tf.Variable(0, dtype=tf.int64, trainable=False, aggregation=agg)
        self.consecutive = tf.Variable(0, dtype=tf.int64, trainable=False, aggregation=agg)

    def record(self, finite: tf.Tensor) -> None:
        bad = tf.cast(tf.logical_not(finite), tf.int64)
        self.total.assign_add(bad)
        self.consecutive.assign((self.consecutive + bad) * bad)


def batch_size(data) -> tf.Tensor:
    """The leading dimension of a (nested) batch."""
    return tf.shape(tf.nest.flatten(data)[0])[0]
