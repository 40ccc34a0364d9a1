"""The fine-tuning job: a task model from a pre-trained tower (or random
init), layer-wise decayed AdamW, evaluation every epoch, run on the engine.

`run_finetuning(FinetuneOptions(...))` is the whole job; `electra_tf.finetune`
is its CLI. The strategy, mixed precision, XLA, gradient accumulation,
checkpoints, exact resume and SIGTERM handling are `electra_tf.engine`'s, the
same as pre-training's.

Layout of `model_dir`:
    ckpt-<n>.*, checkpoint   training checkpoints (model, optimizer, input
                             position, dropout RNG); a rerun resumes
    final/                   the weights at the latest evaluation (after the run:
                             the final checkpoint's, the reported result):
                             model.weights.h5, electra_config.json, task.json,
                             vocab.txt (what `electra_tf.export` reads)
    best/                    with --keep_best only: the best evaluation so far
                             by the task's main metric (an optimistic pick)
    metrics.json             every evaluation, the final one, and the best
    finetune_options.json    every option of the run
    train/, eval/            TensorBoard event files
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from typing import Any

import numpy as np
import tensorflow as tf

from electra_tf.checkpoints import check_same_vocab, find_tower, load_encoder, save_task_model
from electra_tf.config import ElectraConfig
from electra_tf.engine.loop import Engine, RunOptions
from electra_tf.finetuning.data import finetune_dataset
from electra_tf.io_utils import atomic_write_json
from electra_tf.modeling.task_model import LOSS_REDUCTIONS, ElectraTaskModel
from electra_tf.optimization import (
    create_optimizer,
    layerwise_lr_multipliers,
    resolve_bias_correction,
)
from electra_tf.tasks import EvalContext, get_task
from electra_tf.tasks.info import INFO_FILE, load_info

DEFAULT_EPOCHS = 3.0


@dataclasses.dataclass(kw_only=True)
class FinetuneOptions(RunOptions):
    """Everything a fine-tuning run needs (the finetune flags, typed).

    `num_train_steps` is derived from `num_train_epochs` and the data.
    """

    OPTIONS_FILE = "finetune_options.json"
    FIXED_ON_RESUME = (
        *RunOptions.FIXED_ON_RESUME,
        *("learning_rate", "layerwise_lr_decay", "layerwise_lr_exponents", "loss_reduction"),
        *("num_train_epochs", "warmup_proportion", "weight_decay", "adam_beta1", "adam_beta2"),
        *("adam_epsilon", "adam_bias_correction", "freeze_encoder", "dropout"),
    )

    data_dir: str
    init_checkpoint: str | None = None
    config: ElectraConfig | None = None  # random init only; else the checkpoint's
    task_head: str | None = None  # None: the task's default (the reference's)
    keep_best: bool = False  # also keep best/ (reported result stays the final one)
    learning_rate: float = 1e-4
    layerwise_lr_decay: float = 0.8
    layerwise_lr_exponents: str = "paper"  # or "reference": the released code's, one power more
    loss_reduction: str = "sum"  # the reference's: summed over the batch, then clipped
    num_train_epochs: float | None = None  # None: the task's (finetune_info.json), else 3
    warmup_proportion: float = 0.1
    train_batch_size: int = 32
    eval_batch_size: int = 128
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-6
    adam_bias_correction: bool | None = None  # None: on for short warmups
    keep_checkpoint_max: int = 1
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float | None = None  # None: the head's (SpanTask)
    freeze_encoder: bool = False  # train the head alone on fixed features (a linear probe)
    dropout: float | None = None  # None: the model's (the checkpoint's config)
    eval_every_epoch: bool = True  # False: evaluate the final step only

    def validate(self) -> None:
        super().validate()
        self.require_positive("eval_batch_size")
        if self.num_train_epochs is not None and self.num_train_epochs <= 0:
            raise ValueError(f"--num_train_epochs must be positive, got {self.num_train_epochs}")
        if not 0 <= self.warmup_proportion <= 1:
            raise ValueError(f"--warmup_proportion must be in [0, 1], got {self.warmup_proportion}")
        if self.loss_reduction not in LOSS_REDUCTIONS:
            raise ValueError(
                f"--loss_reduction must be one of {LOSS_REDUCTIONS}, got {self.loss_reduction!r}"
            )
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout must be in [0, 1), got {self.dropout}")
        if not 0 < self.layerwise_lr_decay <= 1:
            raise ValueError(
                f"--layerwise_lr_decay must be in (0, 1], got {self.layerwise_lr_decay}"
            )

    def to_json_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["config"] = self.config.to_dict() if self.config else None
        return d


def build_model(options: FinetuneOptions, info: dict[str, Any]) -> tuple[ElectraTaskModel, str]:
    """The task model (pre-trained encoder loaded) and where its encoder came from."""
    if options.init_checkpoint:
        tower_dir = find_tower(options.init_checkpoint)
        config = ElectraConfig.load_from_dir(tower_dir)
        source = tower_dir
        data_vocab = {
            "sha256": info.get("vocab_sha256"),
            "size": info.get("vocab_size"),
            "file": info.get("vocab_file"),
        }
        check_same_vocab(tower_dir, data_vocab, os.path.join(options.data_dir, INFO_FILE))
    else:
        if options.config is None:
            raise ValueError("random init needs a config (--model_size) or --init_checkpoint")
        config = options.config
        source = "random init"
    if options.dropout is not None:
        config = dataclasses.replace(config, dropout=options.dropout)
    if config.vocab_size != info["vocab_size"]:
        raise ValueError(
            f"the model's vocab_size={config.vocab_size} ({source}) but the data in "
            f"{options.data_dir} was tokenized with a {info['vocab_size']}-token vocab"
        )
    if info["max_seq_length"] > config.max_position_embeddings:
        raise ValueError(
            f"the data's max_seq_length={info['max_seq_length']} exceeds the model's "
            f"max_position_embeddings={config.max_position_embeddings} ({source})"
        )
    model = ElectraTaskModel(
        config,
        get_task(info["kind"]),
        num_labels=max(len(info.get("labels") or []), 1),
        with_null=bool(info.get("squad", {}).get("version_2")),
        head=options.task_head,
        loss_reduction=options.loss_reduction,
        seed=options.seed,
        grad_accum_steps=options.grad_accum_steps,
        clip_norm=options.clip_norm,
        jit_compile=options.jit_compile,
        freeze_encoder=options.freeze_encoder,
    )
    model.build()
    if options.init_checkpoint:
        model.backbone.set_weights(load_encoder(source).get_weights())
    return model, source


def task_description(
    model: ElectraTaskModel, info: dict[str, Any], null_threshold: float | None = None
) -> dict[str, Any]:
    """task.json: what inference needs to know about the task (SQuAD 2.0: the
    no-answer threshold evaluation used, None for the head's default)."""
    task = {
        key: info.get(key)
        for key in ("task", "kind", "labels", "pair", "max_seq_length", "lower_case", "squad")
    }
    task.update(num_labels=model.num_labels, with_null=model.with_null, head=model.head_type)
    if null_threshold is not None:
        task["null_threshold"] = null_threshold
    return task


def save_for_export(
    model: ElectraTaskModel,
    info: dict,
    data_dir: str,
    directory: str,
    null_threshold: float | None = None,
) -> None:
    """Writes the model as `electra_tf.export` reads it (weights, config, task, vocab)."""
    task = task_description(model, info, null_threshold)
    save_task_model(model, task, os.path.join(data_dir, "vocab.txt"), directory)


class Evaluator:
    """Runs the model over each dev split (on this worker, whole) and scores it."""

    def __init__(self, model: ElectraTaskModel, options: FinetuneOptions, info: dict[str, Any]):
        self.model, self.options, self.info = model, options, info
        self.splits = [s for s in info["splits"] if s != "train"]
        self._predict = tf.function(
            lambda features: model(features, training=False), reduce_retracing=True
        )

    def _outputs(self, split: str) -> tuple[dict, dict]:
        outputs, labels = {}, {}
        data = finetune_dataset(
            self.options.data_dir, self.info, split, self.options.eval_batch_size, False
        )
        for features, batch_labels in data:
            for k, v in self._predict(features).items():
                v = tf.cast(v, tf.float32) if v.dtype.is_floating else v
                outputs.setdefault(k, []).append(v.numpy())
            for k, v in batch_labels.items():
                labels.setdefault(k, []).append(v.numpy())
        return (
            {k: np.concatenate(v) for k, v in outputs.items()},
            {k: np.concatenate(v) for k, v in labels.items()},
        )

    def run(self) -> dict[str, float]:
        results = {}
        for split in self.splits:
            outputs, labels = self._outputs(split)
            ctx = EvalContext(
                self.info,
                self.options.data_dir,
                split,
                self.options.model_dir,
                self.options.n_best_size,
                self.options.max_answer_length,
                self.options.null_score_diff_threshold,
            )
            scores = self.model.task.score(outputs, labels, ctx)
            prefix = "" if split == "dev" else f"{split}_"
            results.update({prefix + k: v for k, v in scores.items()})
        return results


@dataclasses.dataclass
class _Schedule:
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    every_epoch: bool = True  # False: one evaluation, after the last step

    @classmethod
    def of(cls, options: FinetuneOptions, info: dict[str, Any]) -> _Schedule:
        train_features = info["splits"]["train"]["features"]
        steps_per_epoch = max(1, math.ceil(train_features / options.train_batch_size))
        epochs = options.num_train_epochs or info.get("default_epochs", DEFAULT_EPOCHS)
        total = max(1, int(round(epochs * steps_per_epoch)))
        warmup = int(options.warmup_proportion * total)
        return cls(steps_per_epoch, total, warmup, options.eval_every_epoch)

    def next_event(self, step: int) -> int:
        if not self.every_epoch:
            return self.total_steps
        return min((step // self.steps_per_epoch + 1) * self.steps_per_epoch, self.total_steps)


class _History:
    """metrics.json: every evaluation, the final one and (opt-in) the best.

    The reported result is the final evaluation, as the reference reports
    the final checkpoint; picking the best epoch on the dev set it is scored
    on is optimistic, so `best/` is kept only with --keep_best and
    metrics.json says which is which.
    """

    def __init__(self, options: FinetuneOptions, info: dict[str, Any], chief: bool):
        self.path = os.path.join(options.model_dir, "metrics.json")
        self.options, self.info, self.chief = options, info, chief
        self.data: dict[str, Any] = {
            "evaluations": [],
            "final": None,
            "best": None,
            "reported": "final",
            "best_selection": "on" if options.keep_best else "off",
        }
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                self.data.update(json.load(f))

    def has(self, step: int) -> bool:
        return any(e["step"] == step for e in self.data["evaluations"])

    def add(self, step: int, epoch: float, scores: dict[str, float], model) -> None:
        entry = {"step": step, "epoch": epoch, **scores}
        self.data["evaluations"].append(entry)
        self.data["final"] = entry
        directory = self.options.model_dir
        if self.chief:
            save_for_export(
                model,
                self.info,
                self.options.data_dir,
                f"{directory}/final",
                self.options.null_score_diff_threshold,
            )
        best, main = self.data["best"], self.info["main_metric"]
        if self.options.keep_best and (best is None or scores[main] > best[main]):
            self.data["best"] = entry
            if self.chief:
                save_for_export(
                    model,
                    self.info,
                    self.options.data_dir,
                    f"{directory}/best",
                    self.options.null_score_diff_threshold,
                )
        if self.chief:
            atomic_write_json(self.path, self.data)


def _optimizer(options: FinetuneOptions, model: ElectraTaskModel, schedule: _Schedule):
    multipliers = layerwise_lr_multipliers(
        model.trainable_variables,
        model.config.num_layers,
        options.layerwise_lr_decay,
        options.layerwise_lr_exponents,
    )
    return create_optimizer(
        "adamw",
        options.learning_rate,
        schedule.warmup_steps,
        schedule.total_steps,
        options.weight_decay,
        options.adam_beta1,
        options.adam_beta2,
        options.adam_epsilon,
        bias_correction=resolve_bias_correction(
            options.adam_bias_correction, schedule.warmup_steps
        ),
        lr_multipliers=multipliers,
    )


def run_finetuning(options: FinetuneOptions, stream=sys.stdout) -> dict[str, Any]:
    """Trains (or resumes), evaluates every epoch; returns metrics.json's content
    (every evaluation, "final", and "best" with keep_best) plus the step."""
    info = load_info(options.data_dir)
    schedule = _Schedule.of(options, info)
    options = dataclasses.replace(options, num_train_steps=schedule.total_steps)
    engine = Engine(options, stream)  # first: MWMS must exist before any TF op runs
    try:
        with engine.scope():
            model, source = build_model(options, info)
            optimizer = _optimizer(options, model, schedule)
        engine.setup(model, optimizer)
        if engine.chief:
            atomic_write_json(
                os.path.join(options.model_dir, options.OPTIONS_FILE), options.to_json_dict()
            )
        engine.announce(
            f"Fine-tuning {info['task']} ({info['kind']}), encoder from {source}",
            f"{info['splits']['train']['features']:,} train features in {options.data_dir}, "
            f"{schedule.total_steps} steps ({schedule.steps_per_epoch}/epoch), evaluated "
            f"{'every epoch' if options.eval_every_epoch else 'at the end'} on "
            f"{info['main_metric']}" + (", the encoder frozen" if options.freeze_encoder else ""),
        )
        history = _History(options, info, engine.chief)
        evaluator = Evaluator(model, options, info)

        def evaluate(step: int) -> None:
            if history.has(step):
                return
            scores = evaluator.run()
            history.add(step, step / schedule.steps_per_epoch, scores, model)
            engine.logger.write_eval(step, scores)
            engine.save()

        def train_data(ctx, batch, skip_records, first_batch_index):
            return finetune_dataset(
                options.data_dir, info, "train", batch, True, options.seed, skip_records, ctx
            )

        engine.train(train_data, next_event=schedule.next_event, on_event=evaluate)
        ended = engine.finish()
        return dict(
            history.data,
            step=ended["step"],
            preempted=ended["preempted"],
            signal=ended.get("signal"),
            skipped_steps=ended["skipped_steps"],
        )
    finally:
        engine.close()
