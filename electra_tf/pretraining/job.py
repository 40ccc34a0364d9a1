"""The pre-training job: data, objective and optimizer, run on the engine.

`run_pretraining(PretrainOptions(...))` is the whole job; the CLI in
`electra_tf.pretrain` only turns flags into options. The strategy,
precision, checkpoints, resume and preemption are `electra_tf.engine`'s.

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
import sys
from typing import Any

import numpy as np
import tensorflow as tf

from electra_tf import shard_scan
from electra_tf.checkpoints import find_towers, load_tower, save_tower, vocab_identity
from electra_tf.config import ElectraConfig
from electra_tf.engine.loop import Engine, RunOptions, batches_per_step
from electra_tf.io_utils import atomic_write_json
from electra_tf.masking import SCHEMES, Masker, max_predictions_for
from electra_tf.modeling import ElectraPretrainer, MlmPretrainer
from electra_tf.modeling.electra_pretrainer import (
    EMBEDDING_SHARING,
    copy_discriminator,
    copy_generator,
)
from electra_tf.modeling.pretrainer_base import PretrainerBase
from electra_tf.optimization import (
    STARVING_WARMUP_STEPS,
    bias_correction_warning,
    create_optimizer,
    resolve_bias_correction,
)
from electra_tf.pretraining import data as data_lib
from electra_tf.vocab import Vocab

OBJECTIVES = ("electra", "mlm")


DISC_BIAS_INITS = ("prior", "zero")


@dataclasses.dataclass(kw_only=True)
class PretrainOptions(RunOptions):
    """Everything a pre-training run needs (the pretrain flags, typed)."""

    OPTIONS_FILE = "pretrain_options.json"
    FIXED_ON_RESUME = (
        *RunOptions.FIXED_ON_RESUME,
        *("learning_rate", "warmup_steps", "lr_decay_power", "weight_decay", "optimizer"),
        *("adam_beta1", "adam_beta2", "adam_epsilon", "adam_bias_correction"),
        *("objective", "gen_weight", "disc_weight", "temperature", "temperature_start"),
        *("temperature_anneal_steps", "max_seq_length", "mask_rate", "dynamic_masking"),
        *("whole_word_masking", "shuffle_buffer"),
    )

    config: ElectraConfig
    train_data: str
    eval_data: str | None = None
    max_seq_length: int = 128
    train_batch_size: int = 128
    eval_batch_size: int = 128
    learning_rate: float = 5e-4
    warmup_steps: int = 100
    lr_decay_power: float = 1.0
    weight_decay: float = 0.01
    optimizer: str = "adamw"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-6
    adam_bias_correction: bool | None = None  # None: on for warmups shorter than 10,000
    objective: str = "electra"
    init_checkpoint: str | None = None
    gen_weight: float = 1.0
    disc_weight: float = 50.0
    disc_bias_init: str = "prior"
    temperature: float = 1.0
    temperature_start: float | None = None
    temperature_anneal_steps: int = 0
    embedding_sharing: str = "shared"
    mask_rate: float = 0.15
    dynamic_masking: str | None = None  # None: by objective
    whole_word_masking: bool = False
    vocab: str | None = None
    eval_every_steps: int = 0
    num_eval_steps: int = 100
    shuffle_buffer: int = 10000
    skip_corrupt_records: bool = False

    def validate(self) -> None:
        super().validate()
        self.require_positive("eval_batch_size", "num_eval_steps", "shuffle_buffer")
        if self.warmup_steps < 0:
            raise ValueError(f"--warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.max_seq_length > self.config.max_position_embeddings:
            raise ValueError(
                f"--max_seq_length={self.max_seq_length} exceeds the model's "
                f"max_position_embeddings={self.config.max_position_embeddings}"
            )
        if self.eval_every_steps % self.log_every_steps:
            raise ValueError("--eval_every_steps must be a multiple of --log_every_steps")
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
        if self.disc_bias_init not in DISC_BIAS_INITS:
            raise ValueError(
                f"--disc_bias_init must be one of {DISC_BIAS_INITS}, got {self.disc_bias_init!r}"
            )

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


def disc_bias_warning(options: PretrainOptions) -> str | None:
    """A warning when a fresh discriminator starts from a zero head bias behind a short warmup."""
    if (
        options.disc_bias_init != "zero"
        or options.init_checkpoint
        or options.warmup_steps >= STARVING_WARMUP_STEPS
    ):
        return None
    return (
        f"warning: --disc_bias_init=zero with --warmup_steps={options.warmup_steps}: the "
        "encoder learns the base rate of replaced tokens itself by making its outputs the "
        "same for every token (in our short runs its held-out hidden-state spread fell from "
        "0.92 to 0.001 within 100 steps). Drop the flag to start the bias at the base rate."
    )


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
        disc_prior=options.mask_rate if options.disc_bias_init == "prior" else None,
        **common,
    )


def init_tower_dirs(path: str, flag: str = "--init_checkpoint") -> dict[str, str]:
    """The discriminator/ (required) and generator/ (optional) towers under `path`.

    `path` is a pre-training --model_dir, an electra_tf.convert output, or a
    discriminator tower directory itself.
    """
    found = find_towers(path, ("discriminator", "generator"), itself="discriminator")
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


@dataclasses.dataclass
class _Inputs:
    """The run's training and (optional) held-out data, checked against the options."""

    train: data_lib.PretrainingData
    masker: Masker | None
    evaluation: data_lib.PretrainingData | None = None
    eval_masker: Masker | None = None


def _inspect_inputs(options: PretrainOptions) -> _Inputs:
    def inspect(pattern: str, flag: str) -> data_lib.PretrainingData:
        data = data_lib.inspect_data(pattern, flag, options.skip_corrupt_records)
        data_lib.check_compatible(data, options.config.vocab_size, options.max_seq_length, flag)
        check_masking(options, data, flag)
        return data

    train = inspect(options.train_data, "--train_data")
    inputs = _Inputs(train, _masker_for(options, train))
    if options.eval_data:
        inputs.evaluation = inspect(options.eval_data, "--eval_data")
        inputs.eval_masker = _masker_for(options, inputs.evaluation)
    return inputs


def _describe_run(options: PretrainOptions) -> str:
    config = options.config
    return (
        f"{options.objective.upper()} pre-training of a {config.num_layers}-layer, "
        f"{config.hidden_size}-wide encoder"
    )


def _describe_data(inputs: _Inputs) -> str:
    """How much training (and held-out) data there is, from dataset_info.json."""

    def one(data: data_lib.PretrainingData) -> str:
        where = os.path.dirname(os.path.abspath(data.files[0]))
        text = f"{len(data.files)} file(s) in {where}"
        if data.info and "shards" in data.info:
            listed = {s["file"]: s["examples"] for s in data.info["shards"]}
            examples = sum(listed.get(os.path.basename(f), 0) for f in data.files)
            text += f", {examples:,} sequences of {data.max_seq_length}"
        return text

    text = one(inputs.train)
    if inputs.evaluation is not None:
        text += f"; held out: {one(inputs.evaluation)}"
    return text


def _report_skipped(inputs: _Inputs, stream) -> dict:
    """Prints and returns what --skip_corrupt_records leaves out, per data flag."""
    skipped = {}
    for flag, data in (("--train_data", inputs.train), ("--eval_data", inputs.evaluation)):
        if data is None or data.scans is None:
            continue
        skipped[flag] = data.skipped()
        for line in skipped[flag]["damaged_files"]:
            print(f"skipping damage in {flag}: {line}", file=stream, flush=True)
    return skipped


def _name_damage(error: tf.errors.DataLossError, inputs: _Inputs) -> ValueError:
    """The reader's 'corrupted record at N' as an error naming the file and record."""
    for flag, data in (("--train_data", inputs.train), ("--eval_data", inputs.evaluation)):
        if data is not None:
            where = shard_scan.locate_damage(list(data.files), data.compression, flag)
            if "no damaged record" not in where:
                break
    return ValueError(
        f"{where}. Rebuild the shard, or rerun with --skip_corrupt_records to read past "
        f"damaged records (they are counted). Reader: {error.message.splitlines()[-1][:200]}"
    )


def _vocab_of(options: PretrainOptions, inputs: _Inputs) -> dict[str, Any] | None:
    """The vocab the training data was tokenized with (written beside each tower)."""
    info = inputs.train.info
    if info and info.get("vocab_sha256"):
        return {
            "sha256": info["vocab_sha256"],
            "size": info.get("vocab_size"),
            "file": info.get("vocab_file"),
        }
    return vocab_identity(Vocab.load(options.vocab)) if options.vocab else None


def _build(options: PretrainOptions, engine: Engine, vocab: dict | None = None) -> PretrainerBase:
    """The objective and its optimizer on the engine, resumed or initialised."""
    with engine.scope():
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
    resumed = engine.setup(model, optimizer)
    if not resumed and options.init_checkpoint:
        loaded = load_init_checkpoint(model, options.init_checkpoint)
        print(
            f"Initialised {' and '.join(loaded)} from {options.init_checkpoint}",
            file=engine.stream,
            flush=True,
        )
    if engine.chief:

        def write_towers(step: int) -> None:
            for name, tower in model.export_towers().items():
                save_tower(tower, options.config, os.path.join(options.model_dir, name), vocab)

        engine.before_save(write_towers)
    return model


def _datasets(options: PretrainOptions, inputs: _Inputs, engine: Engine):
    """(the training DatasetFn, a function making the held-out dataset)."""

    def train(ctx, batch, skip_records, first_batch_index):
        return data_lib.pretraining_dataset(
            inputs.train,
            batch,
            seed=options.seed,
            training=True,
            skip_records=skip_records,
            first_batch_index=first_batch_index,
            masker=inputs.masker,
            input_context=ctx,
            shuffle_buffer=options.shuffle_buffer,
        )

    def evaluation():
        return engine.distribute(
            lambda ctx, batch: data_lib.pretraining_dataset(
                inputs.evaluation,
                batch,
                seed=options.seed,
                training=False,
                masker=inputs.eval_masker,
                input_context=ctx,
                repeat=True,
            ).take(options.num_eval_steps * batches_per_step(ctx)),
            options.eval_batch_size,
        )

    return train, (evaluation if inputs.evaluation is not None else None)


def run_pretraining(options: PretrainOptions, stream=sys.stdout) -> dict[str, Any]:
    """Trains (or resumes) and returns the final metrics."""
    engine = Engine(options, stream)  # first: MWMS must exist before any TF op runs
    try:
        inputs = _inspect_inputs(options)
        if options.objective == "electra":
            for warning in (
                bias_correction_warning(options.bias_correction, options.warmup_steps),
                disc_bias_warning(options),
            ):
                if warning:
                    print(warning, file=sys.stderr, flush=True)
        model = _build(options, engine, _vocab_of(options, inputs))
        if engine.chief:  # once the checkpoint (if any) accepted this config
            options.config.save(os.path.join(options.model_dir, "electra_config.json"))
            atomic_write_json(
                os.path.join(options.model_dir, options.OPTIONS_FILE), options.to_json_dict()
            )
        engine.announce(_describe_run(options), _describe_data(inputs))
        train_data, eval_data = _datasets(options, inputs, engine)
        if eval_data is not None:
            _collapse_baseline(model, eval_data, options, engine.logger, engine.step, engine.chief)
        validation = None
        if eval_data is not None and options.eval_every_steps:

            def validation():
                return dict(
                    validation_data=eval_data(),
                    validation_steps=options.num_eval_steps,
                    validation_freq=options.eval_every_steps // options.log_every_steps,
                )

        skipped = _report_skipped(inputs, engine.stream)
        engine.train(train_data, validation=validation)
        results: dict[str, Any] = engine.finish()
        if skipped:
            results["skipped_data"] = skipped
        if not results["preempted"]:
            _final_report(options, model, engine, eval_data, results)
        return results
    except tf.errors.DataLossError as e:  # a record failed its checksum mid-run
        raise _name_damage(e, inputs) from None
    finally:
        engine.close()


def _final_report(options, model, engine: Engine, eval_data, results: dict) -> None:
    """Final held-out evaluation, results.json and where things are."""
    stream, logger = engine.stream, engine.logger
    if logger.history:
        results["train"] = logger.history[-1]
    if eval_data is not None:
        eval_logs = model.evaluate(
            eval_data(), steps=options.num_eval_steps, verbose=0, return_dict=True
        )
        results["eval"] = {k: float(np.mean(v)) for k, v in eval_logs.items()}
        shown = "  ".join(f"{k} {v:.4f}" for k, v in sorted(results["eval"].items()))
        print(f"final eval: {shown}", file=stream, flush=True)
        logger.check_collapse(results["eval"]["hidden_spread"])
        results["eval_at_start"] = {"hidden_spread": logger.first_spread}
        print(held_out_summary(results["eval"], options.config.vocab_size), file=stream, flush=True)
    if engine.chief:
        atomic_write_json(os.path.join(options.model_dir, "results.json"), results)
    print(
        f"Checkpoint: {results['checkpoint']}\n"
        f"Discriminator (for fine-tuning): {os.path.join(options.model_dir, 'discriminator')}\n"
        f"TensorBoard: tensorboard --logdir {options.model_dir}",
        file=stream,
        flush=True,
    )
