"""The one place command-line flags are defined (absl, `--flagfile` friendly).

Flags come in groups so every CLI defines exactly the groups it uses; each
group is defined at most once per process.
"""

from __future__ import annotations

import json
from typing import Any

from absl import flags

from electra_tf.config import PRESETS, ElectraConfig
from electra_tf.distribute import STRATEGIES

FLAGS = flags.FLAGS
_DEFINED: set[str] = set()

# The stage each training flag belongs to, for `--help` (electra_tf.cli);
# a flag not listed here is shown under its command's own heading.
STAGE_ORDER = ("data", "model", "optimisation", "checkpoints", "evaluation", "distribution")
_STAGE_FLAGS = {
    "data": "train_data eval_data data_dir vocab max_seq_length shuffle_buffer "
    "skip_corrupt_records mask_rate dynamic_masking whole_word_masking",
    "model": "model_size model_overrides vocab_size objective gen_weight disc_weight "
    "disc_bias_init temperature temperature_start temperature_anneal_steps "
    "embedding_sharing task_head freeze_encoder dropout",
    "optimisation": "train_batch_size grad_accum_steps num_train_steps num_train_epochs "
    "optimizer learning_rate warmup_steps warmup_proportion lr_decay_power weight_decay "
    "adam_beta1 adam_beta2 adam_epsilon adam_bias_correction clip_norm layerwise_lr_decay "
    "layerwise_lr_exponents loss_reduction seed max_consecutive_nonfinite",
    "checkpoints": "model_dir init_checkpoint save_checkpoints_steps keep_checkpoint_max "
    "max_steps_per_run keep_best",
    "evaluation": "eval_batch_size eval_every_steps num_eval_steps log_every_steps "
    "n_best_size max_answer_length null_score_diff_threshold eval_every_epoch",
    "distribution": "distribution_strategy num_gpus tpu all_reduce_alg mixed_precision "
    "steps_per_execution fast_kernels jit_compile",
}
STAGES = {name: stage for stage, names in _STAGE_FLAGS.items() for name in names.split()}


def _once(group: str) -> bool:
    if group in _DEFINED:
        return False
    _DEFINED.add(group)
    return True


def define_model_flags() -> None:
    if not _once("model"):
        return
    flags.DEFINE_enum("model_size", "small", sorted(PRESETS), "ElectraConfig preset.")
    flags.DEFINE_string(
        "model_overrides",
        "{}",
        "JSON object of ElectraConfig field overrides, e.g. '{\"num_layers\": 4}'.",
    )


def define_training_flags() -> None:
    """Flags every training job has (pre-training and fine-tuning)."""
    if not _once("training"):
        return
    flags.DEFINE_string("model_dir", None, "Checkpoints, TensorBoard logs, config.")
    flags.DEFINE_integer("train_batch_size", 128, "GLOBAL batch size (split over replicas).")
    flags.DEFINE_integer("eval_batch_size", 128, "Global eval batch size.")
    flags.DEFINE_integer("log_every_steps", 100, "Steps between log lines / TensorBoard points.")
    flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept (0 keeps all).")
    flags.DEFINE_integer("seed", 42, "Seed for initialisation, shuffling and sampling.")
    flags.DEFINE_integer(
        "grad_accum_steps", 1, "Micro-batches per update (the global batch is split into them)."
    )
    flags.DEFINE_integer(
        "save_checkpoints_steps",
        1000,
        "Steps between checkpoints (fine-tuning also saves at each evaluation).",
    )
    flags.DEFINE_integer(
        "max_steps_per_run",
        0,
        "Stop (with a checkpoint) after this many steps in this invocation; rerun to continue. "
        "0: no limit.",
    )
    flags.DEFINE_integer(
        "max_consecutive_nonfinite",
        10,
        "A step with a non-finite loss or gradient is skipped and counted; after this many in "
        "a row the run stops with a checkpoint of the last good weights.",
    )


def define_distribution_flags() -> None:
    if not _once("distribution"):
        return
    flags.DEFINE_enum(
        "distribution_strategy",
        "default",
        list(STRATEGIES),
        "tf.distribute strategy; multi-worker reads the TF_CONFIG environment variable.",
    )
    flags.DEFINE_integer("num_gpus", 0, "GPUs for one_device / mirrored.")
    flags.DEFINE_string("tpu", None, "TPU address for --distribution_strategy=tpu.")
    flags.DEFINE_string("all_reduce_alg", None, "All-reduce algorithm (nccl, ring, ...).")
    flags.DEFINE_enum(
        "mixed_precision",
        "float32",
        ["float32", "bfloat16", "float16"],
        "Compute dtype; float16 adds dynamic loss scaling. Variables stay float32.",
    )
    flags.DEFINE_boolean(
        "jit_compile", False, "XLA-compile the forward+backward pass (collectives stay outside)."
    )
    flags.DEFINE_integer("steps_per_execution", 1, "Train steps per tf.function call.")
    flags.DEFINE_boolean(
        "fast_kernels",
        None,
        "This package's CPU kernels (dense, GELU, LayerNorm, dropout) instead of the stock "
        "ops; same weights either way. Unset: on when no GPU or TPU is visible.",
    )


def define_adam_flags() -> None:
    """AdamW flags shared by pre-training and fine-tuning."""
    if not _once("adam"):
        return
    flags.DEFINE_float("learning_rate", 5e-4, "Peak learning rate.")
    flags.DEFINE_float("weight_decay", 0.01, "Decoupled weight decay (not LayerNorm/bias).")
    flags.DEFINE_float("adam_beta1", 0.9, "Adam beta_1.")
    flags.DEFINE_float("adam_beta2", 0.999, "Adam beta_2.")
    flags.DEFINE_float("adam_epsilon", 1e-6, "Adam epsilon.")
    flags.DEFINE_boolean(
        "adam_bias_correction",
        None,
        "Adam's bias correction. Unset: on when the warmup is shorter than the reference's "
        "10,000 steps, off otherwise (the reference omits it; short runs without it starve "
        "the discriminator). --adam_bias_correction / --noadam_bias_correction force it.",
    )
    flags.DEFINE_float("clip_norm", 1.0, "Global-norm gradient clip after the all-reduce (0: off).")


def define_pretrain_flags() -> None:
    define_model_flags()
    define_distribution_flags()
    define_training_flags()
    define_adam_flags()
    if not _once("pretrain"):
        return
    flags.DEFINE_integer("vocab_size", 30522, "Vocabulary size (must match the data's vocab).")
    flags.DEFINE_integer("max_seq_length", 128, "Sequence length of the data and the model.")
    flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "Optimizer.")
    flags.DEFINE_integer("warmup_steps", 10000, "Linear warmup steps.")
    flags.DEFINE_float("lr_decay_power", 1.0, "Power of the decay to 0 (1 = linear).")
    flags.DEFINE_string("train_data", None, "Comma-separated globs of pre-training TFRecords.")
    flags.DEFINE_string("eval_data", None, "Globs of held-out TFRecords (optional).")
    flags.DEFINE_integer("num_train_steps", 1000000, "Optimizer steps in total.")
    flags.DEFINE_enum(
        "objective",
        "electra",
        ["electra", "mlm"],
        "electra: generator + replaced-token detection; mlm: BERT's masked LM on the same "
        "encoder (the baseline for equal-compute comparisons).",
    )
    flags.DEFINE_string(
        "init_checkpoint",
        None,
        "Continue pre-training from these weights: a pre-training --model_dir or an "
        "electra_tf.convert output (discriminator/ and, if present, generator/). Its "
        "electra_config.json sets the architecture; a missing generator starts fresh.",
    )
    flags.DEFINE_float("gen_weight", 1.0, "Weight of the generator MLM loss.")
    flags.DEFINE_float("disc_weight", 50.0, "Weight of the discriminator loss.")
    flags.DEFINE_enum(
        "disc_bias_init",
        "prior",
        ["prior", "zero"],
        "prior: the replaced-token head's output bias starts at the logit of --mask_rate, "
        "the share of replaced tokens at the start, so the encoder does not collapse to "
        "learn that base rate; zero: the reference's initialisation.",
    )
    flags.DEFINE_float("temperature", 1.0, "Sampling temperature for replacements.")
    flags.DEFINE_float(
        "temperature_start",
        None,
        "Temperature curriculum: start sampling at this temperature and anneal linearly to "
        "--temperature over --temperature_anneal_steps. Unset: constant --temperature.",
    )
    flags.DEFINE_integer("temperature_anneal_steps", 0, "Steps of the temperature anneal.")
    flags.DEFINE_enum(
        "embedding_sharing",
        "shared",
        ["shared", "disentangled", "none"],
        "shared: one embedding table for both towers (the paper); disentangled: the "
        "discriminator reads stop_gradient(table) + its own residual (DeBERTa-v3 GDES); "
        "none: separate tables.",
    )
    flags.DEFINE_float(
        "mask_rate",
        0.15,
        "Fraction of real tokens masked. Pre-masked records must have been made with it.",
    )
    flags.DEFINE_enum(
        "dynamic_masking",
        None,
        ["electra", "bert"],
        "Masking scheme: electra (85% [MASK], 15% kept) or bert (80/10/10). Default: electra "
        "for --objective=electra, bert for --objective=mlm. Pre-masked records must match.",
    )
    flags.DEFINE_boolean("whole_word_masking", False, "Dynamic whole-word masking (needs --vocab).")
    flags.DEFINE_string(
        "vocab",
        None,
        "Vocab file; needed for dynamic masking when the data has no dataset_info.json.",
    )
    flags.DEFINE_integer("eval_every_steps", 0, "Steps between evaluations (0: only at the end).")
    flags.DEFINE_integer("num_eval_steps", 100, "Eval batches per evaluation.")
    flags.DEFINE_integer("shuffle_buffer", 10000, "Records in the shuffle buffer.")
    flags.DEFINE_boolean(
        "skip_corrupt_records",
        False,
        "Read every shard once at start; skip records that fail their checksum and the "
        "unreadable tail of truncated shards, counting them in the log and results.json "
        "(default: such damage is an error naming the file and record).",
    )


def model_overrides_from_flags() -> dict[str, Any]:
    """--model_overrides as a dict (errors name the flag)."""
    try:
        overrides = json.loads(FLAGS.model_overrides or "{}")
    except json.JSONDecodeError as e:
        raise ValueError(f"--model_overrides is not valid JSON: {e}") from e
    if not isinstance(overrides, dict):
        raise ValueError("--model_overrides must be a JSON object")
    return overrides


def model_config_from_flags(
    vocab_size: int | None = None, max_seq_length: int | None = None
) -> ElectraConfig:
    """The ElectraConfig the flags describe; errors name the flag.

    `vocab_size` / `max_seq_length` default to the flags of those names
    (fine-tuning takes them from its data instead).
    """
    vocab_size = vocab_size or FLAGS.vocab_size
    max_seq_length = max_seq_length or FLAGS.max_seq_length
    overrides = model_overrides_from_flags()
    overrides.setdefault("vocab_size", vocab_size)
    preset = PRESETS[FLAGS.model_size]
    if max_seq_length > overrides.get(
        "max_position_embeddings", preset.get("max_position_embeddings", 512)
    ):
        overrides["max_position_embeddings"] = max_seq_length
    try:
        return ElectraConfig.from_preset(FLAGS.model_size, **overrides)
    except (TypeError, ValueError) as e:
        raise ValueError(f"--model_size/--model_overrides: {e}") from e


def define_convert_flags() -> None:
    if not _once("convert"):
        return
    flags.DEFINE_enum(
        "from",
        None,
        ["google", "hf", "keras_hub"],
        "Import: a google-research/electra TF1 checkpoint, a Hugging Face ELECTRA directory, "
        "or a keras-hub ElectraBackbone preset directory.",
    )
    flags.DEFINE_enum(
        "to",
        None,
        ["hf", "keras_hub"],
        "Export our tower(s): hf writes Hugging Face models, keras_hub a keras-hub preset "
        "(ElectraBackbone + ElectraTokenizer) of the discriminator's encoder.",
    )
    flags.DEFINE_string("input", None, "Checkpoint path / model directory to read.")
    flags.DEFINE_string("output", None, "Directory to write.")
    flags.DEFINE_enum(
        "tower",
        "both",
        ["both", "discriminator", "generator"],
        "Towers to import from a Google checkpoint, or to export with --to=hf.",
    )
    flags.DEFINE_string(
        "vocab",
        None,
        "--to=keras_hub: the vocab for the preset's tokenizer (default: vocab.txt in or beside "
        "the tower, or the file its vocab.json names).",
    )


def define_finetune_flags() -> None:
    define_model_flags()
    define_distribution_flags()
    define_training_flags()
    define_adam_flags()
    if not _once("finetune"):
        return
    flags.DEFINE_string(
        "data_dir", None, "Output of data_prep.build_finetuning_data (has finetune_info.json)."
    )
    flags.DEFINE_string(
        "init_checkpoint",
        None,
        "Tower to start from: a pre-training --model_dir, an electra_tf.convert output, or one "
        "tower directory. Unset: random init with --model_size/--model_overrides (a baseline).",
    )
    flags.DEFINE_float(
        "num_train_epochs",
        None,
        "Epochs (fractions allowed). Unset: the task's, as the reference sets them (RTE and "
        "STS-B 10, SQuAD 2, others 3; recorded by build_finetuning_data).",
    )
    flags.DEFINE_enum(
        "layerwise_lr_exponents",
        "paper",
        ["paper", "reference"],
        "paper: top layer decay^1, embeddings decay^(L+1) (the paper's description); "
        "reference: one power more on every layer (the released code's, to reproduce its "
        "numbers exactly).",
    )
    flags.DEFINE_enum(
        "loss_reduction",
        "sum",
        ["sum", "mean"],
        "sum: the loss is summed over the batch before the 1.0 gradient clip (the "
        "reference's); mean: averaged.",
    )
    flags.DEFINE_boolean(
        "keep_best",
        False,
        "Also keep the best dev evaluation in --model_dir/best (the reported result stays the "
        "final checkpoint's, as the reference's; picking the best epoch is optimistic).",
    )
    flags.DEFINE_string(
        "task_head",
        None,
        "Head layout. Classification/regression: reference (dropout -> dense on [CLS], "
        "google-research/electra's; the default) or hf (Hugging Face's dense-gelu-dense, "
        "needed to convert the result to HF).",
    )
    flags.DEFINE_float("warmup_proportion", 0.1, "Fraction of the steps with linear warmup.")
    flags.DEFINE_boolean(
        "freeze_encoder",
        False,
        "Train the head alone on the encoder's fixed features (no dropout in the encoder): a "
        "linear probe of what pre-training learned.",
    )
    flags.DEFINE_float(
        "dropout",
        None,
        "Dropout for fine-tuning. Unset: the model's (--init_checkpoint's config, e.g. 0 after "
        "pre-training without dropout; 0.1 for --model_size).",
    )
    flags.DEFINE_boolean(
        "eval_every_epoch",
        True,
        "Evaluate after every epoch; --noeval_every_epoch: after the last step only (cheaper "
        "for many short epochs; the reported result is the final evaluation either way).",
    )
    flags.DEFINE_float(
        "layerwise_lr_decay",
        0.8,
        "Layer-wise LR decay: head 1, top layer decay^1, embeddings decay^(layers+1). 1 = off.",
    )
    flags.DEFINE_integer("n_best_size", 20, "SQuAD: candidate spans kept per question.")
    flags.DEFINE_integer("max_answer_length", 30, "SQuAD: longest answer in word-pieces.")
    flags.DEFINE_float(
        "null_score_diff_threshold",
        None,
        "SQuAD 2.0: predict no answer when the null score exceeds this. Default: the "
        "reference's -2.75 for the joint head (its null score is the answerability logit), "
        "0 for --task_head=independent (null logit minus the best span's score).",
    )


def define_export_flags() -> None:
    if not _once("export"):
        return
    flags.DEFINE_string(
        "checkpoint",
        None,
        "A fine-tuned model (electra_tf.finetune's --model_dir/final) or a pre-trained "
        "discriminator (a pre-training --model_dir or tower directory).",
    )
    flags.DEFINE_string("export_dir", None, "BASE/NAME: the version directory goes inside.")
    flags.DEFINE_integer("version", None, "Version number (default: the next free integer).")
    flags.DEFINE_string("vocab", None, "Vocab file, if the checkpoint has no vocab.txt.")
    flags.DEFINE_integer(
        "max_seq_length", None, "Longest tokenized input (default: the fine-tuning data's)."
    )
    flags.DEFINE_integer("max_answer_length", 30, "QA: longest answer in word-pieces.")
    flags.DEFINE_integer(
        "batch_shards",
        1,
        "serving_default splits a batch into this many parts that run in parallel; set it "
        "to the server's cores when serving with one intra-op thread "
        "(--tensorflow_intra_op_parallelism=1), the fastest setting for single requests.",
    )


def define_tflite_flags() -> None:
    if not _once("tflite"):
        return
    flags.DEFINE_string("saved_model", None, "An electra_tf.export version directory.")
    flags.DEFINE_string("output", None, "The .tflite file to write (vocab.txt etc. go beside it).")
    flags.DEFINE_enum("quantize", "none", ["none", "float16", "dynamic", "int8"], "Quantization.")
    flags.DEFINE_string(
        "representative_data", None, "TSV/CSV of texts to calibrate --quantize=int8 on."
    )
    flags.DEFINE_integer("num_calibration", 200, "Texts used for int8 calibration.")
    flags.DEFINE_enum(
        "target",
        None,
        ["classifier", "embedder", "ids"],
        "classifier: MediaPipe TextClassifier (raw text in); embedder: MediaPipe "
        "TextEmbedder; ids: token-id inputs for custom runtimes. Unset: classifier for "
        "single-text classification exports, ids otherwise.",
    )
    flags.DEFINE_integer(
        "input_length",
        None,
        "MediaPipe targets: tokens per input (MediaPipe pads every text to it). Unset: the "
        "model's training length.",
    )
    flags.DEFINE_enum("pooling", "cls", ["cls", "mean"], "Embedder: [CLS] or mean pooling.")
    flags.DEFINE_string(
        "eval_data",
        None,
        "Labelled TSV/CSV: print and save a parity report against the SavedModel.",
    )


def define_fill_mask_flags() -> None:
    if not _once("fill_mask"):
        return
    flags.DEFINE_string(
        "model_dir",
        None,
        "A pre-training --model_dir, an electra_tf.convert output with a generator/, or a "
        "generator tower directory.",
    )
    flags.DEFINE_string(
        "vocab", None, "The generator's vocab (default: vocab.txt beside it, or its vocab.json)."
    )
    flags.DEFINE_integer("top_k", 10, "Predictions shown for each [MASK].")
    flags.DEFINE_boolean("json", False, "Print JSON (one object per text) instead of text.")
