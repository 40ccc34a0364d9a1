"""Runs fine-tuning: model from a pre-trained tower (or random init), layer-wise
decayed AdamW, evaluation every epoch, the best checkpoint kept.

`run_finetuning(FinetuneOptions(...))` is the whole job; `electra_tf.finetune`
is its CLI.

Layout of `model_dir`:
    ckpt-<n>.*, checkpoint   tf.train.Checkpoint(model, optimizer) at each
                             evaluation; a rerun resumes from the latest
    best/                    the best weights so far by the task's main metric:
                             model.weights.h5, electra_config.json, task.json,
                             vocab.txt (what `electra_tf.export` reads)
    metrics.json             every evaluation, and the best
    finetune_options.json    every option of the run
    train/, eval/            TensorBoard event files
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.finetuning import squad
from electra_tf.finetuning.data import finetune_dataset, load_info
from electra_tf.finetuning.task_model import ElectraTaskModel
from electra_tf.finetuning.tasks import legacy as tasks
from electra_tf.io_utils import atomic_write_bytes, atomic_write_json
from electra_tf.optimization import (
    ElectraAdamW,
    WarmupLinearDecay,
    layerwise_lr_multipliers,
    resolve_bias_correction,
)
from electra_tf.pretraining.job import load_tower, restore_checkpoint, save_tower

TASK_FILE = "task.json"


@dataclasses.dataclass
class FinetuneOptions:
    """Everything a fine-tuning run needs (the finetune flags, typed)."""

    data_dir: str
    model_dir: str
    init_checkpoint: str | None = None
    config: ElectraConfig | None = None  # random init only; else the checkpoint's
    learning_rate: float = 1e-4
    layerwise_lr_decay: float = 0.8
    num_train_epochs: float = 3.0
    warmup_proportion: float = 0.1
    train_batch_size: int = 32
    eval_batch_size: int = 128
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-6
    adam_bias_correction: bool | None = None  # None: on for short warmups
    clip_norm: float = 1.0
    log_every_steps: int = 100
    keep_checkpoint_max: int = 1
    seed: int = 42
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0

    def validate(self) -> None:
        for name in ("train_batch_size", "eval_batch_size", "log_every_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.num_train_epochs <= 0:
            raise ValueError(f"--num_train_epochs must be positive, got {self.num_train_epochs}")
        if not 0 <= self.warmup_proportion <= 1:
            raise ValueError(f"--warmup_proportion must be in [0, 1], got {self.warmup_proportion}")
        if not 0 < self.layerwise_lr_decay <= 1:
            raise ValueError(
                f"--layerwise_lr_decay must be in (0, 1], got {self.layerwise_lr_decay}"
            )

    def to_json_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["config"] = self.config.to_dict() if self.config else None
        return d


def find_tower(path: str, flag: str = "--init_checkpoint") -> str:
    """The tower directory in `path`: itself, or its discriminator/ or encoder/.
    Errors name `flag`, the option `path` came from."""
    for candidate in (path, os.path.join(path, "discriminator"), os.path.join(path, "encoder")):
        if os.path.exists(os.path.join(candidate, "model.weights.h5")):
            return candidate
    raise ValueError(
        f"{flag}={path}: no model.weights.h5 in it or in its discriminator/ or "
        "encoder/ (write one with electra_tf.pretrain or electra_tf.convert)"
    )


def load_encoder_weights(model: ElectraTaskModel, tower_dir: str) -> None:
    """Copies a saved discriminator's (or encoder's) encoder into `model.backbone`."""
    errors = []
    for tower in ("discriminator", "encoder"):
        try:
            loaded = load_tower(tower_dir, tower)
        except ValueError as e:  # the h5 holds the other tower's layout
            errors.append(f"{tower}: {e}")
            continue
        backbone = loaded.backbone if tower == "discriminator" else loaded
        model.backbone.set_weights(backbone.get_weights())
        return
    raise ValueError(f"{tower_dir}: cannot load as a discriminator or encoder: {errors}")


def build_model(options: FinetuneOptions, info: dict[str, Any]) -> tuple[ElectraTaskModel, str]:
    """The task model and where its encoder came from."""
    if options.init_checkpoint:
        tower_dir = find_tower(options.init_checkpoint)
        config = ElectraConfig.load_from_dir(tower_dir)
        source = tower_dir
    else:
        if options.config is None:
            raise ValueError("random init needs a config (--model_size) or --init_checkpoint")
        config = options.config
        source = "random init"
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
    labels = info.get("labels") or []
    model = ElectraTaskModel(
        config,
        info["kind"],
        num_labels=max(len(labels), 1),
        with_null=bool(info.get("squad", {}).get("version_2")),
    )
    model.build()
    if options.init_checkpoint:
        load_encoder_weights(model, source)
    return model, source


def save_for_export(model: ElectraTaskModel, info: dict, data_dir: str, directory: str) -> None:
    """Writes what inference needs, each file atomically: weights, config, task, vocab."""
    save_tower(model, model.config, directory)
    with open(os.path.join(data_dir, "vocab.txt"), "rb") as f:
        atomic_write_bytes(os.path.join(directory, "vocab.txt"), f.read())
    task = {
        key: info.get(key)
        for key in ("task", "kind", "labels", "pair", "max_seq_length", "lower_case", "squad")
    }
    task["num_labels"] = model.num_labels
    task["with_null"] = model.with_null
    atomic_write_json(os.path.join(directory, TASK_FILE), task)


def load_task_model(directory: str) -> tuple[ElectraTaskModel, dict[str, Any]]:
    """Loads what `save_for_export` wrote (e.g. `model_dir/best`)."""
    import json

    path = os.path.join(directory, TASK_FILE)
    try:
        with open(path) as f:
            task = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path} not found: not a fine-tuned model directory") from None
    model = ElectraTaskModel(
        ElectraConfig.load_from_dir(directory),
        task["kind"],
        num_labels=task["num_labels"],
        with_null=task["with_null"],
    )
    model.build()
    model.load_weights(os.path.join(directory, "model.weights.h5"))
    return model, task


class _Evaluator:
    """Runs the model over each dev split and scores it."""

    def __init__(self, model, options: FinetuneOptions, info: dict[str, Any]):
        self.model, self.options, self.info = model, options, info
        self.splits = [s for s in info["splits"] if s != "train"]
        self.squad_data = {}
        if info["kind"] == "span":
            version_2 = info["squad"]["version_2"]
            for split in self.splits:
                self.squad_data[split] = squad.load_eval_data(options.data_dir, split, version_2)

        @tf.function(reduce_retracing=True)
        def predict(features):
            return model(features, training=False)

        self._predict = predict

    def run(self) -> dict[str, float]:
        results = {}
        for split in self.splits:
            outputs, labels = {}, {}
            data = finetune_dataset(
                self.options.data_dir, self.info, split, self.options.eval_batch_size, False
            )
            for features, batch_labels in data:
                for k, v in self._predict(features).items():
                    outputs.setdefault(k, []).append(np.asarray(v, np.float32))
                for k, v in batch_labels.items():
                    labels.setdefault(k, []).append(v.numpy())
            outputs = {k: np.concatenate(v) for k, v in outputs.items()}
            labels = {k: np.concatenate(v) for k, v in labels.items()}
            if self.info["kind"] == "span":
                scores = self._score_squad(split, outputs, labels)
            else:
                scores = tasks.score(self.info, outputs, labels)
            prefix = "" if split == "dev" else f"{split}_"
            results.update({prefix + k: v for k, v in scores.items()})
        return results

    def _score_squad(self, split, outputs, labels) -> dict[str, float]:
        examples, features, gold = self.squad_data[split]
        version_2 = self.info["squad"]["version_2"]
        predictions, _ = squad.decode(
            examples,
            features,
            labels["unique_ids"],
            outputs["start_logits"],
            outputs["end_logits"],
            outputs.get("null_logit"),
            n_best_size=self.options.n_best_size,
            max_answer_length=self.options.max_answer_length,
            lower_case=self.info["lower_case"],
            version_2=version_2,
            null_score_diff_threshold=self.options.null_score_diff_threshold,
        )
        atomic_write_json(
            os.path.join(self.options.model_dir, f"{split}_predictions.json"), predictions
        )
        return squad.evaluate(gold, predictions, version_2)


def run_finetuning(options: FinetuneOptions, stream=sys.stdout) -> dict[str, Any]:
    """Trains (or resumes), evaluates every epoch; returns the metrics history and best."""
    options.validate()
    info = load_info(options.data_dir)
    keras.utils.set_random_seed(options.seed)
    model, source = build_model(options, info)
    os.makedirs(options.model_dir, exist_ok=True)
    atomic_write_json(
        os.path.join(options.model_dir, "finetune_options.json"), options.to_json_dict()
    )

    train_features = info["splits"]["train"]["features"]
    steps_per_epoch = max(1, math.ceil(train_features / options.train_batch_size))
    total_steps = max(1, int(round(options.num_train_epochs * steps_per_epoch)))
    warmup_steps = int(options.warmup_proportion * total_steps)
    multipliers = layerwise_lr_multipliers(
        model.trainable_variables, model.config.num_layers, options.layerwise_lr_decay
    )
    optimizer = ElectraAdamW(
        WarmupLinearDecay(options.learning_rate, warmup_steps, total_steps),
        options.weight_decay,
        options.adam_beta1,
        options.adam_beta2,
        options.adam_epsilon,
        resolve_bias_correction(options.adam_bias_correction, warmup_steps),
        lr_multipliers=multipliers,
    )
    optimizer.build(model.trainable_variables)

    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(
        checkpoint, options.model_dir, max_to_keep=max(options.keep_checkpoint_max, 1)
    )
    metrics_path = os.path.join(options.model_dir, "metrics.json")
    history: dict[str, Any] = {"evaluations": [], "best": None}
    if manager.latest_checkpoint:
        restore_checkpoint(checkpoint, manager.latest_checkpoint)
        if os.path.exists(metrics_path):
            import json

            with open(metrics_path) as f:
                history = json.load(f)
        print(
            f"resumed from {manager.latest_checkpoint} at step {int(optimizer.iterations)}",
            file=stream,
        )
    step = int(optimizer.iterations)
    main_metric = info["main_metric"]
    print(
        f"{info['task']} ({info['kind']}): {train_features} train features, {total_steps} steps "
        f"({steps_per_epoch}/epoch), encoder from {source}, main metric {main_metric}",
        file=stream,
    )

    kind, clip_norm = info["kind"], options.clip_norm
    variables = model.trainable_variables

    @tf.function
    def train_step(features, labels):
        with tf.GradientTape() as tape:
            loss = tasks.loss(kind, labels, model(features, training=True))
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]
        if clip_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, clip_norm)
        optimizer.apply(grads, variables)
        return loss

    evaluator = _Evaluator(model, options, info)
    train_data = finetune_dataset(
        options.data_dir, info, "train", options.train_batch_size, True, options.seed
    ).skip(step)  # the same batches as an uninterrupted run
    train_writer = tf.summary.create_file_writer(os.path.join(options.model_dir, "train"))
    eval_writer = tf.summary.create_file_writer(os.path.join(options.model_dir, "eval"))
    losses = []
    iterator = iter(train_data)
    while step < total_steps:
        features, labels = next(iterator)
        losses.append(train_step(features, labels))  # read at log time: no sync per step
        step += 1
        if step % options.log_every_steps == 0 or step == total_steps:
            lr = float(optimizer.learning_rate)
            mean_loss = float(np.mean([loss.numpy() for loss in losses]))
            with train_writer.as_default(step=step):
                tf.summary.scalar("loss", mean_loss)
                tf.summary.scalar("learning_rate", lr)
            print(f"step {step}/{total_steps} loss {mean_loss:.4f} lr {lr:.2e}", file=stream)
            losses = []
        if step % steps_per_epoch == 0 or step == total_steps:
            scores = evaluator.run()
            with eval_writer.as_default(step=step):
                for name, value in scores.items():
                    tf.summary.scalar(name, value)
            entry = {"step": step, "epoch": step / steps_per_epoch, **scores}
            history["evaluations"].append(entry)
            best = history["best"]
            if best is None or scores[main_metric] > best[main_metric]:
                save_for_export(
                    model, info, options.data_dir, os.path.join(options.model_dir, "best")
                )
                history["best"] = entry
            shown = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
            print(f"eval at step {step} (epoch {entry['epoch']:.2f}): {shown}", file=stream)
            manager.save(checkpoint_number=step)
            atomic_write_json(metrics_path, history)
    train_writer.flush()
    eval_writer.flush()
    return history
