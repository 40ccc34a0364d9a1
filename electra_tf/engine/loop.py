"""The one training loop, shared by pre-training and fine-tuning.

A job (`electra_tf.pretraining.job`, `electra_tf.finetuning.job`) builds its
model and data; `Engine` owns everything around them: the strategy, mixed
precision, the seed, `compile`, checkpoints with exact resume (step,
optimizer slots, dropout RNG states, input position), SIGTERM
checkpoint-and-exit, chief-only writes, logging and TensorBoard.

The model is a `StepModel` (its `train_step` normalises by global counts,
all-reduces, clips once and accumulates), so the loop is the same for any
objective or task. Keras "epochs" are logging intervals here.

Example:
    engine = Engine(RunOptions(model_dir=d, num_train_steps=100))
    with engine.scope():
        model = MyStepModel(...)
        optimizer = create_optimizer(...)
    engine.setup(model, optimizer)
    finished = engine.train(lambda ctx, batch, skip, first: make_dataset(...))
    engine.save()   # the final (or preempted) checkpoint
    engine.close()
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import ClassVar

import keras
import numpy as np
import tensorflow as tf

from electra_tf.checkpoints import remove_partial_checkpoints, restore_latest
from electra_tf.compat import seed_generator_states
from electra_tf.distribute import get_strategy
from electra_tf.engine.callbacks import (
    PROGRESS_SECONDS,
    Checkpointer,
    NonFiniteMonitor,
    PreemptionWatcher,
    StepLogger,
)
from electra_tf.engine.run_lock import RunLock
from electra_tf.errors import TrainingHalted
from electra_tf.kernels import set_fast_kernels
from electra_tf.modeling.step_model import NonFiniteGuard, StepModel

PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}

# make(input_context, per-pipeline batch size, records to skip, index of the first batch)
DatasetFn = Callable[[tf.distribute.InputContext | None, int, int, int], tf.data.Dataset]


@dataclasses.dataclass(kw_only=True)
class RunOptions:
    """The options every training job has (flags of the same names).

    A job's options name the file in `model_dir` they are recorded in
    (`OPTIONS_FILE`) and the options a resumed run must keep
    (`FIXED_ON_RESUME`): those that shape the trajectory from step 0 (the
    learning-rate schedule, the batch, the data order), which a checkpoint
    does not hold, so a change would silently give a run that matches no
    single command. `num_train_steps` may change (training a run further is
    common), and the resumed run says what that does to the schedule.
    """

    OPTIONS_FILE: ClassVar[str | None] = None
    FIXED_ON_RESUME: ClassVar[tuple[str, ...]] = (
        "train_batch_size",
        "seed",
        "clip_norm",
        "mixed_precision",
    )

    model_dir: str
    num_train_steps: int = 1000
    train_batch_size: int = 32
    clip_norm: float = 1.0
    grad_accum_steps: int = 1
    log_every_steps: int = 100
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    seed: int = 42
    distribution_strategy: str = "default"
    num_gpus: int = 0
    tpu: str | None = None
    all_reduce_alg: str | None = None
    mixed_precision: str = "float32"
    jit_compile: bool = False
    steps_per_execution: int = 1
    max_steps_per_run: int = 0
    max_consecutive_nonfinite: int = 10
    fast_kernels: bool | None = None  # None: on when no GPU/TPU is visible

    def require_positive(self, *names: str) -> None:
        """Errors naming the first of these options that is not > 0."""
        for name in names:
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")

    def validate(self) -> None:
        self.require_positive(
            "train_batch_size",
            "num_train_steps",
            "log_every_steps",
            "save_checkpoints_steps",
            "steps_per_execution",
            "grad_accum_steps",
            "max_consecutive_nonfinite",
        )
        if self.train_batch_size % self.grad_accum_steps:
            raise ValueError(
                f"--train_batch_size={self.train_batch_size} is not divisible by "
                f"--grad_accum_steps={self.grad_accum_steps}"
            )
        for name in ("log_every_steps", "save_checkpoints_steps"):
            if getattr(self, name) % self.steps_per_execution:
                raise ValueError(
                    f"--{name}={getattr(self, name)} is not a multiple of "
                    f"--steps_per_execution={self.steps_per_execution}"
                )
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(
                f"--mixed_precision must be one of {sorted(PRECISIONS)}, "
                f"got {self.mixed_precision!r}"
            )
        if self.clip_norm < 0:
            raise ValueError(f"--clip_norm must be >= 0, got {self.clip_norm}")

    def check_resumable(self) -> str | None:
        """Errors naming each `FIXED_ON_RESUME` option that differs from the
        one `model_dir`'s run was recorded with (its `OPTIONS_FILE`); a note
        to print when `num_train_steps` changed."""
        if not self.OPTIONS_FILE:
            return None
        path = os.path.join(self.model_dir, self.OPTIONS_FILE)
        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path) as f:
            recorded = json.load(f)
        changed = [
            f"--{name}={now} (the run has {recorded[name]})"
            for name in self.FIXED_ON_RESUME
            if name in recorded
            and recorded[name] != (now := json.loads(json.dumps(getattr(self, name))))
        ]
        if changed:
            raise ValueError(
                f"{self.model_dir} holds a run started with other settings: "
                f"{', '.join(changed)}. Rerun with the run's values to resume it, or "
                "start a new --model_dir (with --init_checkpoint to begin from its weights)."
            )
        before = recorded.get("num_train_steps", self.num_train_steps)
        if before == self.num_train_steps:
            return None
        return (
            f"--num_train_steps={self.num_train_steps} (the run was recorded with {before}): "
            f"the learning-rate schedule from here on is that of a {self.num_train_steps}-step run"
        )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the one process that writes model_dir (always, without a cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )


class Engine:
    """Strategy, checkpoints, preemption and the fit loop of one training run.

    Create it first: MultiWorkerMirroredStrategy must exist before any TF op
    runs. Then build the model and optimizer in `engine.scope()`, call
    `setup` and `train`, then `save` and (in a `finally`) `close`.

    Args:
        options: The run's `RunOptions` (or a subclass).
        stream: Where progress lines go.
    """

    def __init__(self, options: RunOptions, stream=sys.stdout):
        options.validate()
        self.options = options
        self.stream = stream
        self.strategy = get_strategy(
            options.distribution_strategy, options.num_gpus, options.tpu, options.all_reduce_alg
        )
        set_fast_kernels(options.fast_kernels)
        replicas = self.strategy.num_replicas_in_sync
        if options.train_batch_size % (replicas * options.grad_accum_steps):
            raise ValueError(
                f"--train_batch_size={options.train_batch_size} is not divisible by the "
                f"{replicas} replicas of --distribution_strategy={options.distribution_strategy}"
                + (
                    f" times --grad_accum_steps={options.grad_accum_steps}"
                    if options.grad_accum_steps > 1
                    else ""
                )
            )
        # Before the job builds anything: a resume that would change the run is
        # refused in the time it takes to read two small files.
        if tf.train.get_checkpoint_state(options.model_dir) is not None:
            note = options.check_resumable()
            if note:
                print(f"note: {note}", file=stream, flush=True)
        self.chief = is_chief(self.strategy)
        os.makedirs(options.model_dir, exist_ok=True)
        # Every worker saves (MWMS needs all of them in the save), but only the
        # chief into model_dir; the others write to temp dirs removed at the end.
        self.save_dir = (
            options.model_dir if self.chief else tempfile.mkdtemp(prefix="electra_worker_")
        )
        self.preemption = PreemptionWatcher(stream)
        self.model: StepModel | None = None
        self.logger: StepLogger | None = None
        self._before_save: list[Callable[[int], None]] = []
        self.lock = RunLock(options.model_dir)
        if self.chief:
            self.lock.acquire()  # last: nothing above can fail while it is held
            if self.lock.held:
                for path in remove_partial_checkpoints(options.model_dir):
                    print(f"Removed {path}, left by a killed save", file=self.stream)

    # --- set-up -----------------------------------------------------------------

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Strategy scope with the run's dtype policy and seed."""
        keras.mixed_precision.set_dtype_policy(PRECISIONS[self.options.mixed_precision])
        keras.utils.set_random_seed(self.options.seed)
        with self.strategy.scope():
            yield

    def setup(self, model: StepModel, optimizer: keras.optimizers.Optimizer) -> bool:
        """Compiles, builds and restores the latest checkpoint; True if it resumed.

        Call after building `model` and `optimizer` in `scope()`.
        """
        options = self.options
        with self.strategy.scope():
            if options.mixed_precision == "float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            model.compile(optimizer=optimizer, steps_per_execution=options.steps_per_execution)
            model.build_all()
            self.input_position = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="input_position"
            )
            self.nonfinite = NonFiniteGuard()
            model.attach_nonfinite_guard(self.nonfinite)
            self._checkpointed = dict(
                model=model,
                optimizer=optimizer,
                input_position=self.input_position,
                rng=seed_generator_states(model),
                nonfinite=self.nonfinite,
            )
            self.checkpoint = tf.train.Checkpoint(**self._checkpointed)
        self.model, self.optimizer = model, optimizer
        self.manager = tf.train.CheckpointManager(
            self.checkpoint,
            self.save_dir,
            max_to_keep=options.keep_checkpoint_max or None,
            step_counter=optimizer.iterations,
        )
        latest = restore_latest(options.model_dir, self._restorable, self.stream)
        if latest:
            print(f"Resumed from {latest}", file=self.stream, flush=True)
        self._saved_position_step = self.step
        self.logger = StepLogger(
            options.model_dir if self.chief else None,
            options.train_batch_size,
            options.num_train_steps,
            self.stream,
        )
        self.checkpointer = Checkpointer(
            self.manager, options.save_checkpoints_steps, options.num_train_steps, self._save_hook
        )
        self.nonfinite_monitor = NonFiniteMonitor(
            self.nonfinite, options.max_consecutive_nonfinite, self.stream
        )
        return bool(latest)

    def announce(self, what: str, data: str) -> None:
        """Prints the start banner: what runs, how far, on what data, where
        the outputs go. Jobs call it once the model is built and restored."""
        options = self.options
        params = sum(int(np.prod(v.shape)) for v in self.model.trainable_weights)
        step = self.step
        steps = (
            f"steps {step:,} -> {options.num_train_steps:,} (resumed)"
            if step
            else f"{options.num_train_steps:,} steps"
        )
        lines = [
            f"{what}: {params / 1e6:.2f} M trainable parameters",
            f"  {steps}, global batch {options.train_batch_size:,} on "
            f"{self.strategy.num_replicas_in_sync} replica(s) "
            f"(--distribution_strategy={options.distribution_strategy}), "
            f"{options.mixed_precision}",
            f"  data: {data}",
            f"  outputs: {options.model_dir} (a checkpoint every "
            f"{options.save_checkpoints_steps:,} steps; a log line every "
            f"{options.log_every_steps:,}, progress at least every "
            f"{PROGRESS_SECONDS:.0f} s)",
        ]
        print("\n".join(lines), file=self.stream, flush=True)

    def _restorable(self, path: str) -> tf.train.Checkpoint:
        """What to restore `path` into: checkpoints written before the non-finite
        counters existed resume with them at 0 rather than being refused."""
        saved = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
        if "nonfinite" in saved:
            return self.checkpoint
        parts = {k: v for k, v in self._checkpointed.items() if k != "nonfinite"}
        return tf.train.Checkpoint(**parts)

    def before_save(self, hook: Callable[[int], None]) -> None:
        """Runs `hook(step)` before each checkpoint (e.g. to write standalone towers)."""
        self._before_save.append(hook)

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def _save_hook(self, now: int) -> None:
        self.input_position.assign_add(
            (now - self._saved_position_step) * self.options.train_batch_size
        )
        self._saved_position_step = now
        for hook in self._before_save:
            hook(now)

    # --- data ----------------------------------------------------------------------

    def distribute(self, make: Callable, global_batch: int):
        """A plain dataset on the default strategy; per-worker pipelines otherwise.

        `make(input_context, batch_size)` builds one pipeline: with a strategy
        it gets the per-replica batch size and shards across workers.
        """
        if self.strategy is tf.distribute.get_strategy():  # the default (no-op) strategy
            return make(None, global_batch)
        return self.strategy.distribute_datasets_from_function(
            lambda ctx: make(ctx, ctx.get_per_replica_batch_size(global_batch))
        )

    def train_data(self, make: DatasetFn, at_step: int):
        """The training data from `at_step` on, exactly where an uninterrupted run is."""
        consumed = (
            int(self.input_position.numpy())
            + (at_step - self._saved_position_step) * self.options.train_batch_size
        )
        return self.distribute(
            lambda ctx, batch: make(
                ctx, batch, consumed // pipelines(ctx), at_step * batches_per_step(ctx)
            ),
            self.options.train_batch_size,
        )

    # --- the loop -------------------------------------------------------------------

    def train(
        self,
        make_train_data: DatasetFn,
        validation: Callable[[], dict] | None = None,
        next_event: Callable[[int], int] | None = None,
        on_event: Callable[[int], None] | None = None,
    ) -> bool:
        """Trains to num_train_steps (or --max_steps_per_run more); False if preempted.

        Args:
            make_train_data: Builds one input pipeline (see `DatasetFn`).
            validation: Keras `fit` validation arguments, when the model's own
                `test_step` evaluates (aligned logging intervals only).
            next_event: The next step after a given one at which `on_event`
                runs (e.g. the end of a data epoch, where fine-tuning
                evaluates); events are also chunk boundaries.
            on_event: Called with the step at each event, and at the start of
                a resumed run that stopped exactly at one (so it must be
                idempotent).
        """
        options = self.options
        step = self.step
        total = options.num_train_steps
        if options.max_steps_per_run > 0:
            # Stop early (checkpointed, resumable); the schedule still spans num_train_steps.
            total = min(total, step + options.max_steps_per_run)
        if step >= options.num_train_steps:
            print(f"Already trained {step} of {options.num_train_steps} steps.", file=self.stream)
        resumed_at_event = step > 0 and next_event is not None and next_event(step - 1) == step
        if on_event is not None and resumed_at_event:
            on_event(step)  # a run stopped between its checkpoint and the event
        with self.preemption.installed():
            while step < total and not self.preemption.requested:
                end = min(next_event(step), total) if next_event else total
                step = self._fit_until(make_train_data, step, end, validation)
                if self.preemption.requested or self.halted or step < end:
                    break
                if on_event is not None and next_event is not None:
                    on_event(step)
        return not self.preemption.requested

    def _fit_until(self, make_train_data, step: int, end: int, validation) -> int:
        interval = self.options.log_every_steps
        while step < end and not self.preemption.requested:
            # Keras epochs are logging intervals aligned to multiples of the
            # interval; a resume or an end off the grid runs a short one first.
            aligned = step % interval == 0 and end - step >= interval
            steps_per_epoch = interval if aligned else min(interval - step % interval, end - step)
            epochs = (end // interval) if aligned else 1
            initial_epoch = (step // interval) if aligned else 0
            self.model.fit(
                self.train_data(make_train_data, step),
                steps_per_epoch=steps_per_epoch,
                epochs=epochs,
                initial_epoch=initial_epoch,
                callbacks=[self.nonfinite_monitor, self.logger, self.checkpointer, self.preemption],
                shuffle=False,  # The pipeline shuffles, with the seed.
                verbose=0,
                **((validation() if validation else {}) if aligned else {}),
            )
            new_step = self.step
            if (
                new_step == step
                or self.halted
                or (self.model.stop_training and not self.preemption.requested)
            ):
                return new_step
            step = new_step
        return step

    @property
    def halted(self) -> str | None:
        """Why the run stopped before its end other than preemption (None if it did not)."""
        monitor = getattr(self, "nonfinite_monitor", None)
        return monitor.halted if monitor is not None else None

    @property
    def skipped_steps(self) -> int:
        """Steps skipped so far for a non-finite loss or gradient."""
        return int(self.nonfinite.total.numpy())

    def finish(self) -> dict:
        """Saves the run's last checkpoint and says how the run ended.

        Returns {"step", "checkpoint", "preempted", "skipped_steps"}; raises
        TrainingHalted (after saving) when non-finite steps stopped the run.
        """
        results = {
            "step": self.step,
            "checkpoint": self.save(),
            "preempted": self.preemption.requested,
            "skipped_steps": self.skipped_steps,
        }
        if self.preemption.requested:
            results["signal"] = self.preemption.signal_name
        if self.halted:
            raise TrainingHalted(f"{self.halted} Saved {results['checkpoint']}.")
        if self.preemption.requested:
            print(
                f"Stopped by {results['signal']} at step {results['step']}: saved "
                f"{results['checkpoint']}; "
                "rerun the same command to resume.",
                file=self.stream,
                flush=True,
            )
        return results

    def save(self) -> str | None:
        """Saves a checkpoint at the current step (if not saved yet); its path."""
        self.checkpointer.set_model(self.model)
        return self.checkpointer.save() or self.manager.latest_checkpoint

    def close(self) -> None:
        """Resets the dtype policy and kernels; removes a worker's temporary save dir."""
        keras.mixed_precision.set_dtype_policy("float32")
        set_fast_kernels(None)
        self.lock.release()
        if not self.chief:
            shutil.rmtree(self.save_dir, ignore_errors=True)


def pipelines(ctx: tf.distribute.InputContext | None) -> int:
    """Input pipelines (one per worker) the global batch is split across."""
    return ctx.num_input_pipelines if ctx else 1


def batches_per_step(ctx: tf.distribute.InputContext | None) -> int:
    """Batches one input pipeline yields per training step (one per local replica)."""
    return ctx.num_replicas_in_sync // ctx.num_input_pipelines if ctx else 1
