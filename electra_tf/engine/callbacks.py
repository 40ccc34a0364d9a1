"""Keras callbacks of the engine's loop: logging/TensorBoard, checkpoints, preemption."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time

import keras
import tensorflow as tf

from electra_tf.checkpoints import save_training_checkpoint

# Shown on the console line; everything goes to TensorBoard.
_CONSOLE_KEYS = (
    "loss",
    "gen_loss",
    "disc_loss",
    "gen_accuracy",
    "disc_auc",
    "replaced_fraction",
    "mlm_loss",
    "mlm_accuracy",
    "hidden_spread",
)
# A held-out hidden-state spread below this fraction of its first value means
# the encoder is collapsing towards one output for every token.
COLLAPSE_FRACTION = 0.5


def collapse_warning(first: float | None, now: float) -> str | None:
    """A warning when the encoder's held-out hidden-state spread has collapsed."""
    if first is None or first <= 0 or now >= COLLAPSE_FRACTION * first:
        return None
    return (
        f"warning: the encoder's held-out hidden-state spread fell from {first:.3f} to "
        f"{now:.3f}: its outputs are becoming the same for every token (collapse; "
        "docs/pretraining.md lists what counters it)."
    )


# Longest silence on a long run: a progress line (steps/s, ETA) is printed
# when no other line came for this long, graph building included.
PROGRESS_SECONDS = 30.0


def format_duration(seconds: float) -> str:
    """`1h02m03s`, `4m05s` or `6s`."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _lr(optimizer, step: int) -> float:
    lr = optimizer.learning_rate
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return float(schedule(step))
    return float(lr)


class StepLogger(keras.callbacks.Callback):
    """Prints a line and writes TensorBoard scalars every logging interval.

    Keras "epochs" are logging intervals here, so `logs` hold the metrics
    averaged over the interval. Adds learning rate and examples/s.
    """

    def __init__(
        self,
        log_dir: str | None,
        global_batch_size: int,
        total_steps: int,
        stream=sys.stdout,
        progress_seconds: float = PROGRESS_SECONDS,
        clock=time.monotonic,
    ):
        super().__init__()
        self.global_batch_size = global_batch_size
        self.total_steps = total_steps
        self.stream = stream
        self.progress_seconds = progress_seconds
        self.clock = clock
        self._last_line = clock()  # when this logger last printed
        self._started = clock()
        self._seen_step: int | None = None  # the last step a batch ended at
        self._rate_start: tuple[float, int] | None = None  # (time, step) of the first batch
        self._heartbeat: threading.Event | None = None
        self.train_writer = (
            tf.summary.create_file_writer(os.path.join(log_dir, "train")) if log_dir else None
        )
        self.eval_writer = (
            tf.summary.create_file_writer(os.path.join(log_dir, "eval")) if log_dir else None
        )
        self.history: list[dict[str, float]] = []
        self.first_spread: float | None = None
        self._t0 = time.time()
        self._step0 = 0

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)
        self._last_line = self.clock()

    # --- the progress heartbeat ----------------------------------------------------

    def heartbeat(self) -> None:
        """Prints a progress line if nothing was printed for `progress_seconds`:
        steps/s and the time left, or how long the first step's graph has been
        building."""
        now = self.clock()
        if now - self._last_line < self.progress_seconds:
            return
        step = self._seen_step
        if step is None or self._rate_start is None:
            self._print(
                f"building the training graph and the input pipeline "
                f"({format_duration(now - self._started)} so far)"
            )
            return
        t0, step0 = self._rate_start
        rate = (step - step0) / max(now - t0, 1e-9)
        left = self.total_steps - step
        eta = format_duration(left / rate) if rate > 0 else "unknown"
        self._print(f"step {step:>7}/{self.total_steps}  {rate:.2f} steps/s  ETA {eta}")

    def on_train_begin(self, logs=None):
        stop = self._heartbeat = threading.Event()

        def beat():
            while not stop.wait(min(self.progress_seconds, 5.0)):
                self.heartbeat()

        threading.Thread(target=beat, name="progress", daemon=True).start()

    def on_train_end(self, logs=None):
        if self._heartbeat is not None:
            self._heartbeat.set()

    def on_train_batch_end(self, batch, logs=None):
        # Keras passes the index of the last batch run, within this epoch.
        self._seen_step = self._step0 + batch + 1
        if self._rate_start is None:
            self._rate_start = (self.clock(), self._seen_step)

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.time()
        self._step0 = self._step()

    def on_epoch_end(self, epoch, logs=None):
        step = self._step()
        elapsed = max(time.time() - self._t0, 1e-9)
        train = {k: float(v) for k, v in (logs or {}).items() if not k.startswith("val_")}
        evals = {k[4:]: float(v) for k, v in (logs or {}).items() if k.startswith("val_")}
        train["learning_rate"] = _lr(self.model.optimizer, step)
        train["examples_per_second"] = (step - self._step0) * self.global_batch_size / elapsed
        if "real_tokens" in train:  # non-pad tokens trained on in the interval
            train["real_tokens_per_second"] = train["real_tokens"] / elapsed
        self.history.append({"step": step, **train, **{f"eval_{k}": v for k, v in evals.items()}})
        if self.train_writer is not None:
            with self.train_writer.as_default(step=step):
                for k, v in train.items():
                    tf.summary.scalar(k, v)
            self.train_writer.flush()
        if evals and self.eval_writer is not None:
            with self.eval_writer.as_default(step=step):
                for k, v in evals.items():
                    tf.summary.scalar(k, v)
            self.eval_writer.flush()
        shown = "  ".join(f"{k} {train[k]:.4f}" for k in _CONSOLE_KEYS if k in train)
        if train.get("skipped_steps"):  # their metrics are left out of the means
            shown += f"  skipped_steps {int(train['skipped_steps'])}"
        line = (
            f"step {step:>7}/{self.total_steps}  {shown}  lr {train['learning_rate']:.2e}  "
            f"{train['examples_per_second']:.1f} ex/s"
        )
        if "real_tokens_per_second" in train:
            line += f"  {train['real_tokens_per_second']:,.0f} tok/s"
        if evals:
            line += "  | eval " + "  ".join(
                f"{k} {evals[k]:.4f}" for k in _CONSOLE_KEYS if k in evals
            )
        self._print(line)
        if "hidden_spread" in evals:
            self.check_collapse(evals["hidden_spread"])
        if not math.isfinite(train.get("loss", 0.0)):
            print("loss is not finite: stopping", file=self.stream, flush=True)
            self.model.stop_training = True

    def write_eval(self, step: int, scores: dict[str, float]) -> None:
        """Prints an evaluation's scores and writes them to TensorBoard's eval/."""
        if self.eval_writer is not None:
            with self.eval_writer.as_default(step=step):
                for name, value in scores.items():
                    tf.summary.scalar(name, value)
            self.eval_writer.flush()
        shown = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
        self._print(f"eval at step {step}: {shown}")

    def check_collapse(self, spread: float) -> None:
        """Records the first held-out spread and warns when a later one collapses."""
        if self.first_spread is None:
            self.first_spread = spread
            return
        warning = collapse_warning(self.first_spread, spread)
        if warning:
            print(warning, file=self.stream, flush=True)


class Checkpointer(keras.callbacks.Callback):
    """Saves `tf.train.CheckpointManager` checkpoints every N steps and at the end.

    `before_save` runs first (it records the input position and writes the
    standalone generator/discriminator weights).
    """

    def __init__(
        self,
        manager: tf.train.CheckpointManager,
        every_steps: int,
        total_steps: int,
        before_save=None,
    ):
        super().__init__()
        self.manager = manager
        self.every_steps = every_steps
        self.total_steps = total_steps
        self.before_save = before_save
        self.last_saved = -1

    def save(self) -> str | None:
        step = int(self.model.optimizer.iterations.numpy())
        if step == self.last_saved:
            return None
        path = save_training_checkpoint(self.manager, step, self.before_save)
        self.last_saved = step
        return path

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every_steps == 0 or step >= self.total_steps:
            self.save()


class PreemptionWatcher(keras.callbacks.Callback):
    """SIGTERM (what schedulers and preemptible VMs send) or SIGINT (Ctrl-C):
    finish the step, stop.

    The caller then saves a checkpoint and exits; rerunning resumes. A second
    SIGINT interrupts at once (KeyboardInterrupt), for a user who will not
    wait for the save. Under
    MultiWorkerMirroredStrategy the workers agree on the stopping step (the
    flag is summed across workers after every batch), so a worker that got the
    signal does not leave the others waiting in a collective.

    Use `with watcher.installed(): model.fit(..., callbacks=[watcher])`.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, stream=sys.stdout):
        super().__init__()
        self.requested = False
        self.signal_name: str | None = None  # the signal that asked to stop
        self.stream = stream
        self._agree = None

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self  # Signal handlers can only be set from the main thread.
            return
        previous = {s: signal.signal(s, self._on_signal) for s in self.SIGNALS}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _on_signal(self, signum, frame):
        if signum == signal.SIGINT and self.requested:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now, unsaved
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        if signum == signal.SIGINT:
            print(
                "\ninterrupted: finishing the step and saving a checkpoint "
                "(Ctrl-C again to stop at once, unsaved)",
                file=self.stream,
                flush=True,
            )

    def on_train_begin(self, logs=None):
        strategy = self.model.distribute_strategy
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):

            @tf.function
            def agree(flag):
                per_replica = strategy.run(lambda f: tf.identity(f), args=(flag,))
                return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

            self._agree = agree

    def on_train_batch_end(self, batch, logs=None):
        requested = self.requested
        if self._agree is not None:
            requested = float(self._agree(tf.constant(float(requested)))) > 0
            self.requested = requested
        if requested:
            self.model.stop_training = True


class NonFiniteMonitor(keras.callbacks.Callback):
    """Reports skipped non-finite steps and halts after too many in a row.

    The step itself skips the update (`StepModel`); this prints each skip and,
    after `max_consecutive` in a row, stops training and sets `halted` to the
    reason. The weights then are those of the last good step, so the engine's
    checkpoint holds no NaN.
    """

    def __init__(self, guard, max_consecutive: int, stream=sys.stdout):
        super().__init__()
        self.guard = guard
        self.max_consecutive = max_consecutive
        self.stream = stream
        self.halted: str | None = None
        self._seen = 0
        self._at_interval_start = 0

    def on_train_begin(self, logs=None):
        self._seen = int(self.guard.total.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self._at_interval_start = int(self.guard.total.numpy())

    def on_epoch_end(self, epoch, logs=None):
        # Runs before the StepLogger, which logs the interval's skipped steps.
        if logs is not None:
            logs["skipped_steps"] = int(self.guard.total.numpy()) - self._at_interval_start

    def on_train_batch_end(self, batch, logs=None):
        total = int(self.guard.total.numpy())
        if total == self._seen:
            return
        self._seen = total
        step = int(self.model.optimizer.iterations.numpy())
        consecutive = int(self.guard.consecutive.numpy())
        print(
            f"step {step}: non-finite loss or gradients, update skipped "
            f"({consecutive} in a row, {total} in all)",
            file=self.stream,
            flush=True,
        )
        if consecutive >= self.max_consecutive:
            self.halted = (
                f"{consecutive} steps in a row (up to step {step}) had a non-finite loss or "
                "gradient (--max_consecutive_nonfinite); the checkpoint holds the last good "
                "weights. Lower the learning rate or check the data before resuming."
            )
            self.model.stop_training = True
