"""Runs ELECTRA pre-training: strategy, data, model, checkpoints, resume.

`run_pretraining(PretrainOptions(...))` is the whole job; the CLI in
`electra_tf.pretrain` only turns flags into options.

Layout of `model_dir`:
    electra_config.json         the ElectraConfig
    pretrain_options.json       every option of the run
    ckpt-<step>.*, checkpoint   tf.train.Checkpoint(model, optimizer, input
                                position, dropout RNG states)
    discriminator/, generator/  the latest weights of each tower alone
                                (model.weights.h5 + electra_config.json)
    train/, eval/               TensorBoard event files
    results.json                final train/eval metrics

Restarting the same command resumes from the latest checkpoint: the step,
the learning-rate schedule, the optimizer slots, the dropout RNG and the
input position all continue where they stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.distribute import get_strategy
from electra_tf.engine.callbacks import Checkpointer, PreemptionWatcher, StepLogger
from electra_tf.engine.step_model import PretrainerBase
from electra_tf.io_utils import atomic_write_json
from electra_tf.masking import SCHEMES, Masker, max_predictions_for
from electra_tf.optimization import (
    bias_correction_warning,
    create_optimizer,
    resolve_bias_correction,
)
from electra_tf.pretraining import ElectraPretrainer, MlmPretrainer
from electra_tf.pretraining import data as data_lib
from electra_tf.pretraining.electra import (
    EMBEDDING_SHARING,
    copy_discriminator,
    copy_generator,
)
from electra_tf.vocab import Vocab

OBJECTIVES = ("electra", "mlm")


@dataclasses.dataclass
class PretrainOptions:
    """Everything a pre-training run needs (the pretrain flags, typed)."""

    config: ElectraConfig
    train_data: str
    model_dir: str
    eval_data: str | None = None
    max_seq_length: int = 128
    train_batch_size: int = 128
    eval_batch_size: int = 128
    num_train_steps: int = 1000
    learning_rate: float = 5e-4
    warmup_steps: int = 100
    lr_decay_power: float = 1.0
    weight_decay: float = 0.01
    optimizer: str = "adamw"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-6
    adam_bias_correction: bool | None = None  # None: on for warmups shorter than 10,000
    clip_norm: float = 1.0
    grad_accum_steps: int = 1
    objective: str = "electra"
    init_checkpoint: str | None = None
    gen_weight: float = 1.0
    disc_weight: float = 50.0
    temperature: float = 1.0
    temperature_start: float | None = None
    temperature_anneal_steps: int = 0
    embedding_sharing: str = "shared"
    mask_rate: float = 0.15
    dynamic_masking: str | None = None  # None: by objective
    whole_word_masking: bool = False
    vocab: str | None = None
    log_every_steps: int = 100
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    eval_every_steps: int = 0
    num_eval_steps: int = 100
    shuffle_buffer: int = 10000
    seed: int = 42
    distribution_strategy: str = "default"
    num_gpus: int = 0
    tpu: str | None = None
    all_reduce_alg: str | None = None
    mixed_precision: str = "float32"
    jit_compile: bool = False
    steps_per_execution: int = 1
    max_steps_per_run: int = 0

    def validate(self) -> None:
        positive = (
            "train_batch_size",
            "eval_batch_size",
            "num_train_steps",
            "log_every_steps",
            "save_checkpoints_steps",
            "num_eval_steps",
            "steps_per_execution",
            "grad_accum_steps",
            "shuffle_buffer",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.warmup_steps < 0:
            raise ValueError(f"--warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.train_batch_size % self.grad_accum_steps:
            raise ValueError(
                f"--train_batch_size={self.train_batch_size} is not divisible by "
                f"--grad_accum_steps={self.grad_accum_steps}"
            )
        if self.max_seq_length > self.config.max_position_embeddings:
            raise ValueError(
                f"--max_seq_length={self.max_seq_length} exceeds the model's "
                f"max_position_embeddings={self.config.max_position_embeddings}"
            )
        for name in ("log_every_steps", "save_checkpoints_steps"):
            if getattr(self, name) % self.steps_per_execution:
                raise ValueError(
                    f"--{name}={getattr(self, name)} is not a multiple of "
                    f"--steps_per_execution={self.steps_per_execution}"
                )
        if self.temperature <= 0:
            raise ValueError(f"--temperature must be positive, got {self.temperature}")
        if self.temperature_start is not None and self.temperature_start <= 0:
            raise ValueError(f"--temperature_start must be positive, got {self.temperature_start}")
        if self.temperature_anneal_steps < 0:
            raise ValueError(
                f"--temperature_anneal_steps must be >= 0, got {self.temperature_anneal_steps}"
            )
        if self.objective not in OBJECTIVES:
            raise ValueError(f"--objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.embedding_sharing not in EMBEDDING_SHARING:
            raise ValueError(
                f"--embedding_sharing must be one of {EMBEDDING_SHARING}, "
                f"got {self.embedding_sharing!r}"
            )
        if self.dynamic_masking not in (None, *SCHEMES):
            raise ValueError(
                f"--dynamic_masking must be one of {SCHEMES}, got {self.dynamic_masking!r}"
            )
        if not 0.0 < self.mask_rate < 1.0:
            raise ValueError(f"--mask_rate must be in (0, 1), got {self.mask_rate}")

    @property
    def masking_scheme(self) -> str:
        """The masking scheme: --dynamic_masking, else the objective's own."""
        if self.dynamic_masking:
            return self.dynamic_masking
        return "bert" if self.objective == "mlm" else "electra"

    @property
    def bias_correction(self) -> bool:
        return resolve_bias_correction(self.adam_bias_correction, self.warmup_steps)

    def to_json_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["config"] = self.config.to_dict()
        return d


def _set_precision(name: str) -> None:
    policy = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}[name]
    keras.mixed_precision.set_dtype_policy(policy)


def check_masking(options: PretrainOptions, data: data_lib.PretrainingData, source: str) -> None:
    """Refuses pre-masked records whose masks were made with other settings.

    Masks in the records are fixed at data-prep time, so a different
    --mask_rate or scheme would be silently ignored.
    """
    masking = (data.info or {}).get("masking") or {}
    if data.max_predictions_per_seq is None or not masking:
        return
    scheme, rate = masking.get("scheme"), masking.get("rate")
    if scheme != options.masking_scheme:
        raise ValueError(
            f"{source}: the records were masked with scheme {scheme!r} (dataset_info.json) but "
            f"this run uses {options.masking_scheme!r} (--objective={options.objective}, "
            f"--dynamic_masking): rebuild the data with --masking=none to mask at train time"
        )
    if rate is not None and abs(float(rate) - options.mask_rate) > 1e-9:
        raise ValueError(
            f"{source}: the records were masked at rate {rate} (dataset_info.json) but "
            f"--mask_rate={options.mask_rate}: rebuild the data with --masking=none to mask "
            "at train time, or pass the data's rate"
        )


def _masker_for(options: PretrainOptions, data: data_lib.PretrainingData) -> Masker | None:
    """Dynamic masking for unmasked records, with the data's special ids."""
    if data.max_predictions_per_seq is not None:
        return None
    vocab_path = options.vocab or (data.info or {}).get("vocab_file")
    if not vocab_path or not os.path.exists(vocab_path):
        raise ValueError(
            "--train_data holds unmasked records: pass --vocab so they can be masked dynamically"
        )
    vocab = Vocab.load(vocab_path)
    if vocab.size != options.config.vocab_size:
        raise ValueError(
            f"--vocab {vocab_path} has {vocab.size} tokens but the model's vocab_size="
            f"{options.config.vocab_size}"
        )
    return Masker.from_vocab(
        dict(
            scheme=options.masking_scheme,
            rate=options.mask_rate,
            max_predictions=max_predictions_for(options.max_seq_length, options.mask_rate),
            whole_word=options.whole_word_masking,
        ),
        vocab,
    )


def _rng_states(model: keras.Model) -> list:
    """Dropout's SeedGenerator states: not saved by default, needed for exact resume."""
    states = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for generator in getattr(layer, "_seed_generators", []):
            states.append(generator.state)
    return states


def _is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )


def save_tower(model: keras.Model, config: ElectraConfig, directory: str) -> None:
    """Writes one tower's weights + config so it loads alone (atomic)."""
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{os.getpid()}.weights.h5")
    model.save_weights(tmp)
    os.replace(tmp, os.path.join(directory, "model.weights.h5"))
    config.save(os.path.join(directory, "electra_config.json"))


def load_tower(directory: str, tower: str = "discriminator") -> keras.Model:
    """Loads a tower saved by pre-training or `electra_tf.convert`.

    `tower` is "discriminator", "generator" or "encoder" (an ElectraBackbone).
    """
    from electra_tf.modeling import (
        ElectraBackbone,
        ElectraDiscriminator,
        ElectraGenerator,
    )

    config = ElectraConfig.load_from_dir(directory)
    classes = {
        "discriminator": ElectraDiscriminator,
        "generator": ElectraGenerator,
        "encoder": ElectraBackbone,
    }
    if tower not in classes:
        raise ValueError(f"tower must be one of {sorted(classes)}, got {tower!r}")
    model = classes[tower](config)
    model.build()
    model.load_weights(os.path.join(directory, "model.weights.h5"))
    return model


def restore_checkpoint(checkpoint: tf.train.Checkpoint, path: str) -> None:
    """Restores `path` into `checkpoint`, every existing variable included.

    Raises ValueError naming the checkpoint when a variable of the model has
    no value in it (another architecture, size or electra_tf version), rather
    than training on with some weights left at their initialisation.
    """
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:  # a missing or a mis-shaped variable
        raise ValueError(
            f"checkpoint {path} does not match this model: {str(e)[:300]} ... Was it "
            "written with another config or electra_tf version? Use another "
            "--model_dir, or import the weights with electra_tf.convert."
        ) from None


def build_pretrainer(options: PretrainOptions) -> PretrainerBase:
    """The objective's model (call in the strategy scope)."""
    common = dict(
        seed=options.seed,
        grad_accum_steps=options.grad_accum_steps,
        clip_norm=options.clip_norm,
        jit_compile=options.jit_compile,
    )
    if options.objective == "mlm":
        return MlmPretrainer(options.config, **common)
    return ElectraPretrainer(
        options.config,
        gen_weight=options.gen_weight,
        disc_weight=options.disc_weight,
        temperature=options.temperature,
        temperature_start=options.temperature_start,
        temperature_anneal_steps=options.temperature_anneal_steps,
        embedding_sharing=options.embedding_sharing,
        **common,
    )


def init_tower_dirs(path: str, flag: str = "--init_checkpoint") -> dict[str, str]:
    """The discriminator/ (required) and generator/ (optional) towers under `path`.

    `path` is a pre-training --model_dir, an electra_tf.convert output, or a
    discriminator tower directory itself.
    """
    found = {}
    for tower in ("discriminator", "generator"):
        directory = os.path.join(path, tower)
        if os.path.exists(os.path.join(directory, "model.weights.h5")):
            found[tower] = directory
    if "discriminator" not in found and os.path.exists(os.path.join(path, "model.weights.h5")):
        found["discriminator"] = path
    if "discriminator" not in found:
        raise ValueError(
            f"{flag}={path}: no discriminator tower in it (looked for model.weights.h5 in it "
            "and in its discriminator/)"
        )
    return found


_GENERATOR_SIZES = (
    "generator_hidden_size",
    "generator_num_layers",
    "generator_num_heads",
    "generator_intermediate_size",
)


def config_for_init(path: str, overrides: dict[str, Any] | None = None) -> ElectraConfig:
    """The architecture of `--init_checkpoint`, with field overrides on top.

    A generator fraction in `overrides` re-derives the generator's sizes (for
    a discriminator-only import that gets a fresh generator).
    """
    overrides = dict(overrides or {})
    values = ElectraConfig.load_from_dir(init_tower_dirs(path)["discriminator"]).to_dict()
    if {"generator_fraction", "generator_layers_fraction"} & set(overrides):
        for name in _GENERATOR_SIZES:
            values[name] = None
    values.update(overrides)
    return ElectraConfig.from_dict(values)


def load_init_checkpoint(model: PretrainerBase, path: str) -> list[str]:
    """Copies the towers under `path` into `model`; returns which were loaded.

    The generator is loaded when the objective has one and the checkpoint
    holds it; otherwise it keeps its fresh initialisation.
    """
    dirs = init_tower_dirs(path)
    loaded = []
    try:
        generator = getattr(model, "generator", None)
        if generator is not None and "generator" in dirs:
            copy_generator(load_tower(dirs["generator"], "generator"), generator)
            loaded.append("generator")
        copy_discriminator(
            load_tower(dirs["discriminator"], "discriminator"),
            model.discriminator,
            keep_shared_table="generator" in loaded,
        )
    except ValueError as e:
        raise ValueError(
            f"--init_checkpoint={path} does not fit the configured model: {e}"
        ) from None
    return ["discriminator", *loaded]


BASELINE_FILE = "eval_baseline.json"
_BASELINE_BATCHES = 10


def _collapse_baseline(model, eval_dataset, options, logger, step: int, chief: bool) -> None:
    """The held-out hidden-state spread at initialisation, which collapse is judged against.

    Measured on a fresh run (a few eval batches; every worker takes part, as
    evaluation is collective) and kept in model_dir by the chief, so a
    resumed run compares with the same baseline.
    """
    path = os.path.join(options.model_dir, BASELINE_FILE)
    if step > 0:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                logger.check_collapse(float(json.load(f)["hidden_spread"]))
        return
    logs = model.evaluate(
        eval_dataset(),
        steps=min(_BASELINE_BATCHES, options.num_eval_steps),
        verbose=0,
        return_dict=True,
    )
    spread = float(np.mean(logs["hidden_spread"]))
    logger.check_collapse(spread)
    if chief:
        atomic_write_json(path, {"step": 0, "hidden_spread": spread})


def held_out_summary(results: dict[str, float], vocab_size: int) -> str:
    """The final held-out result in plain words."""
    if "disc_auc" in results:
        auc = results["disc_auc"]
        verdict = (
            "tells replaced tokens from original ones on text it never trained on"
            if auc >= 0.6
            else "is close to chance: it has not learned to spot replaced tokens"
        )
        return (
            f"Held-out replaced-token detection: AUC {auc:.3f} (chance is 0.500). "
            f"The discriminator {verdict}."
        )
    accuracy = results.get("mlm_accuracy", 0.0)
    return (
        f"Held-out masked-token accuracy: {accuracy:.3f} (one guess in {vocab_size:,} "
        f"tokens is {1 / vocab_size:.4f})."
    )


def run_pretraining(options: PretrainOptions, stream=sys.stdout) -> dict[str, Any]:
    """Trains (or resumes) and returns the final metrics."""
    options.validate()
    config = options.config
    # First: MultiWorkerMirroredStrategy must exist before any TF op runs.
    strategy = get_strategy(
        options.distribution_strategy, options.num_gpus, options.tpu, options.all_reduce_alg
    )
    train = data_lib.inspect_data(options.train_data, "--train_data")
    data_lib.check_compatible(train, config.vocab_size, options.max_seq_length, "--train_data")
    check_masking(options, train, "--train_data")
    masker = _masker_for(options, train)
    evaluation = None
    if options.eval_data:
        evaluation = data_lib.inspect_data(options.eval_data, "--eval_data")
        data_lib.check_compatible(
            evaluation, config.vocab_size, options.max_seq_length, "--eval_data"
        )
        check_masking(options, evaluation, "--eval_data")
        eval_masker = _masker_for(options, evaluation)

    replicas = strategy.num_replicas_in_sync
    if options.train_batch_size % replicas:
        raise ValueError(
            f"--train_batch_size={options.train_batch_size} is not divisible by the "
            f"{replicas} replicas of --distribution_strategy={options.distribution_strategy}"
        )
    chief = _is_chief(strategy)
    model_dir = options.model_dir
    os.makedirs(model_dir, exist_ok=True)
    # Every worker saves (MWMS needs all of them in the save), but only the
    # chief into model_dir; the others write to temp dirs removed at the end.
    save_dir = model_dir if chief else tempfile.mkdtemp(prefix="electra_worker_")
    if chief:
        config.save(os.path.join(model_dir, "electra_config.json"))
        atomic_write_json(os.path.join(model_dir, "pretrain_options.json"), options.to_json_dict())

    warning = bias_correction_warning(options.bias_correction, options.warmup_steps)
    if warning and options.objective == "electra":
        print(warning, file=sys.stderr, flush=True)
    _set_precision(options.mixed_precision)
    keras.utils.set_random_seed(options.seed)
    preemption = PreemptionWatcher()
    try:
        with strategy.scope():
            model = build_pretrainer(options)
            optimizer = create_optimizer(
                options.optimizer,
                options.learning_rate,
                options.warmup_steps,
                options.num_train_steps,
                options.weight_decay,
                options.adam_beta1,
                options.adam_beta2,
                options.adam_epsilon,
                options.lr_decay_power,
                options.bias_correction,
            )
            if options.mixed_precision == "float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            model.compile(optimizer=optimizer, steps_per_execution=options.steps_per_execution)
            model.build_all()
            input_position = tf.Variable(0, dtype=tf.int64, trainable=False, name="input_position")
            checkpoint = tf.train.Checkpoint(
                model=model,
                optimizer=optimizer,
                input_position=input_position,
                rng=_rng_states(model),
            )
        manager = tf.train.CheckpointManager(
            checkpoint,
            save_dir,
            max_to_keep=options.keep_checkpoint_max or None,
            step_counter=optimizer.iterations,
        )
        latest = tf.train.latest_checkpoint(model_dir)
        if latest:
            restore_checkpoint(checkpoint, latest)
            print(f"Resumed from {latest}", file=stream, flush=True)
        elif options.init_checkpoint:
            loaded = load_init_checkpoint(model, options.init_checkpoint)
            print(
                f"Initialised {' and '.join(loaded)} from {options.init_checkpoint}",
                file=stream,
                flush=True,
            )
        step = int(optimizer.iterations.numpy())

        def before_save(now: int) -> None:
            input_position.assign_add((now - before_save.last) * options.train_batch_size)
            before_save.last = now
            if chief:
                for name, tower in model.export_towers().items():
                    save_tower(tower, config, os.path.join(model_dir, name))

        before_save.last = step
        logger = StepLogger(
            model_dir if chief else None, options.train_batch_size, options.num_train_steps, stream
        )
        checkpointer = Checkpointer(
            manager, options.save_checkpoints_steps, options.num_train_steps, before_save
        )

        def train_dataset(at_step: int):
            consumed = (
                int(input_position.numpy())
                + (at_step - before_save.last) * options.train_batch_size
            )
            return _distributed(
                strategy,
                lambda ctx, batch: data_lib.pretraining_dataset(
                    train,
                    batch,
                    seed=options.seed,
                    training=True,
                    skip_records=consumed // _pipelines(ctx),
                    first_batch_index=at_step * _batches_per_step(ctx),
                    masker=masker,
                    input_context=ctx,
                    shuffle_buffer=options.shuffle_buffer,
                ),
                options.train_batch_size,
            )

        def eval_dataset():
            return _distributed(
                strategy,
                lambda ctx, batch: data_lib.pretraining_dataset(
                    evaluation,
                    batch,
                    seed=options.seed,
                    training=False,
                    masker=eval_masker,
                    input_context=ctx,
                    repeat=True,
                ).take(options.num_eval_steps * _batches_per_step(ctx)),
                options.eval_batch_size,
            )

        if evaluation is not None:
            _collapse_baseline(model, eval_dataset, options, logger, step, chief)

        interval = options.log_every_steps
        total = options.num_train_steps
        if options.max_steps_per_run > 0:
            # Stop early (checkpointed, resumable); the schedule still spans num_train_steps.
            total = min(total, step + options.max_steps_per_run)
        if step >= options.num_train_steps:
            print(
                f"Already trained {step} of {options.num_train_steps} steps.",
                file=stream,
                flush=True,
            )
        with preemption.installed():
            while step < total and not preemption.requested:
                # Keras epochs are logging intervals aligned to multiples of the
                # interval; a resume or a total off the grid runs a short one first.
                aligned = step % interval == 0 and total - step >= interval
                steps_per_epoch = (
                    interval if aligned else min(interval - step % interval, total - step)
                )
                epochs = (total // interval) if aligned else 1
                initial_epoch = (step // interval) if aligned else 0
                validation = {}
                if evaluation is not None and options.eval_every_steps and aligned:
                    if options.eval_every_steps % interval:
                        raise ValueError(
                            "--eval_every_steps must be a multiple of --log_every_steps"
                        )
                    validation = dict(
                        validation_data=eval_dataset(),
                        validation_steps=options.num_eval_steps,
                        validation_freq=options.eval_every_steps // interval,
                    )
                model.fit(
                    train_dataset(step),
                    steps_per_epoch=steps_per_epoch,
                    epochs=epochs,
                    initial_epoch=initial_epoch,
                    callbacks=[logger, checkpointer, preemption],
                    shuffle=False,  # The pipeline shuffles, with the seed.
                    verbose=0,
                    **validation,
                )
                new_step = int(optimizer.iterations.numpy())
                if new_step == step or (model.stop_training and not preemption.requested):
                    break
                step = new_step
        checkpointer.set_model(model)
        last_checkpoint = checkpointer.save() or manager.latest_checkpoint

        results: dict[str, Any] = {
            "step": int(optimizer.iterations.numpy()),
            "checkpoint": last_checkpoint,
            "preempted": preemption.requested,
        }
        if preemption.requested:
            print(
                f"Preempted (SIGTERM) at step {results['step']}: saved {last_checkpoint}; "
                "rerun the same command to resume.",
                file=stream,
                flush=True,
            )
            return results
        if logger.history:
            results["train"] = logger.history[-1]
        if evaluation is not None:
            eval_logs = model.evaluate(
                eval_dataset(), steps=options.num_eval_steps, verbose=0, return_dict=True
            )
            results["eval"] = {k: float(np.mean(v)) for k, v in eval_logs.items()}
            shown = "  ".join(f"{k} {v:.4f}" for k, v in sorted(results["eval"].items()))
            print(f"final eval: {shown}", file=stream, flush=True)
            logger.check_collapse(results["eval"]["hidden_spread"])
            results["eval_at_start"] = {"hidden_spread": logger.first_spread}
            print(held_out_summary(results["eval"], config.vocab_size), file=stream, flush=True)
        if chief:
            atomic_write_json(os.path.join(model_dir, "results.json"), results)
        print(
            f"Checkpoint: {last_checkpoint}\n"
            f"Discriminator (for fine-tuning): {os.path.join(model_dir, 'discriminator')}\n"
            f"TensorBoard: tensorboard --logdir {model_dir}",
            file=stream,
            flush=True,
        )
        return results
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
        if not chief:
            shutil.rmtree(save_dir, ignore_errors=True)


def _pipelines(ctx: tf.distribute.InputContext | None) -> int:
    return ctx.num_input_pipelines if ctx else 1


def _batches_per_step(ctx: tf.distribute.InputContext | None) -> int:
    """Batches one input pipeline yields per training step (one per local replica)."""
    return ctx.num_replicas_in_sync // ctx.num_input_pipelines if ctx else 1


def _distributed(strategy: tf.distribute.Strategy, make, global_batch: int):
    """A plain dataset on the default strategy; per-worker pipelines otherwise.

    `make(input_context, batch_size)` builds one pipeline: with a strategy it
    gets the per-replica batch size and shards by file across workers.
    """
    if strategy is tf.distribute.get_strategy():  # the default (no-op) strategy
        return make(None, global_batch)
    return strategy.distribute_datasets_from_function(
        lambda ctx: make(ctx, ctx.get_per_replica_batch_size(global_batch))
    )
