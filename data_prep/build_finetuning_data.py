r"""Turns a fine-tuning dataset into TFRecords for `electra_tf.finetune`.

    python -m data_prep.build_finetuning_data --task=sst-2 \
        --input_dir=glue/SST-2 --vocab=vocab.txt --output_dir=data/sst2

Tasks: the GLUE tasks from their standard TSVs (cola, sst-2, mrpc, sts-b,
qqp, mnli, qnli, rte, wnli), `tsv` (your own TSV/CSV with named columns),
`squad_v1` / `squad_v2` (features by `official.nlp.data.squad_lib`), and
`conll` (token tagging, label on each word's first word-piece).

Writes into --output_dir: `<split>.tfrecord` per split, `vocab.txt` (a copy, so
the fine-tuned model and its exports carry their vocab) and
`finetune_info.json` (task, labels, sizes; written last, so its presence
means the directory is complete). SQuAD also gets `<split>_eval.json` (what
decoding needs to map logits back to text) and `<split>_gold.json` (the
original file, for the official evaluation). Every file is written
atomically; rerunning rewrites the directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
from typing import Any

from absl import flags

from data_prep import finetune_readers as readers
from electra_tf import cli
from electra_tf.io_utils import atomic_write_bytes, atomic_write_json
from electra_tf.records import FINETUNE_INFO as INFO_FILE
from electra_tf.records import IGNORE_LABEL as IGNORE
from electra_tf.tokenizer import WordPieceTokenizer
from electra_tf.vocab import Vocab

SQUAD_TASKS = ("squad_v1", "squad_v2")
TASKS = (*readers.GLUE_TASKS, "tsv", *SQUAD_TASKS, "conll")
DEFAULT_FILES = {
    "tsv": ("train.tsv", "dev.tsv"),
    "conll": ("train.conll", "dev.conll"),
    "squad_v1": ("train-v1.1.json", "dev-v1.1.json"),
    "squad_v2": ("train-v2.0.json", "dev-v2.0.json"),
}


@dataclasses.dataclass
class Settings:
    task: str
    input_dir: str
    output_dir: str
    vocab: str
    max_seq_length: int | None = None  # None: 512 for SQuAD (the reference's), else 128
    lower_case: bool = True
    train_file: str | None = None
    dev_file: str | None = None
    text_column: str = "sentence"
    text_b_column: str | None = None
    label_column: str = "label"
    labels: str | None = None
    regression: bool = False
    doc_stride: int = 128
    max_query_length: int = 64
    double_unordered: bool | None = None  # None: the task's (the reference's) choice
    validation_size: int = 0
    max_train_examples: int = 0
    split_seed: int = 0

    def validate(self) -> None:
        for name in ("validation_size", "max_train_examples"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}")
        if self.task in SQUAD_TASKS and (self.validation_size or self.max_train_examples):
            raise ValueError(
                "--validation_size/--max_train_examples: not for SQuAD (its questions share "
                "paragraphs, so a split by question leaks text); split the JSON by article"
            )
        if self.task not in TASKS:
            raise ValueError(f"--task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.max_seq_length is None:
            self.max_seq_length = 512 if self.task in SQUAD_TASKS else 128
        if self.max_seq_length < 8:
            raise ValueError(f"--max_seq_length must be >= 8, got {self.max_seq_length}")
        if self.task in SQUAD_TASKS:
            window = self.max_seq_length - self.max_query_length - 3  # [CLS] q [SEP] p [SEP]
            if window <= 0:
                raise ValueError("--max_query_length leaves no room for the passage")
            if self.doc_stride > window:
                raise ValueError(
                    f"--doc_stride={self.doc_stride} is longer than the passage window "
                    f"({window} tokens when the question has --max_query_length="
                    f"{self.max_query_length} at --max_seq_length={self.max_seq_length}), "
                    "so the tokens between windows would be in none of them (squad_lib "
                    f"would silently shorten the stride instead); use a stride <= {window} "
                    "(the reference: 128 at length 512)"
                )


def define_flags() -> None:
    flags.DEFINE_enum("task", None, list(TASKS), "Task to prepare.")
    flags.DEFINE_string("input_dir", None, "Directory with the task's files.")
    flags.DEFINE_string("output_dir", None, "Directory to write.")
    flags.DEFINE_string("vocab", None, "WordPiece vocab file (the model's).")
    flags.DEFINE_integer(
        "max_seq_length",
        None,
        "Tokens per example, with [CLS]/[SEP]. Unset: 512 for SQuAD (the reference's), 128 "
        "otherwise.",
    )
    flags.DEFINE_boolean("lower_case", True, "Lower-case and strip accents (uncased vocab).")
    flags.DEFINE_string("train_file", None, "Training file name in --input_dir (task default).")
    flags.DEFINE_string("dev_file", None, "Dev file name in --input_dir (task default).")
    flags.DEFINE_string("text_column", "sentence", "--task=tsv: column of the text.")
    flags.DEFINE_string("text_b_column", None, "--task=tsv: column of the second text (pairs).")
    flags.DEFINE_string("label_column", "label", "--task=tsv: column of the label.")
    flags.DEFINE_string(
        "labels", None, "--task=tsv/conll: comma-separated label list (default: those in train)."
    )
    flags.DEFINE_boolean("regression", False, "--task=tsv: the label is a real number.")
    flags.DEFINE_integer("doc_stride", 128, "SQuAD: stride between passage windows.")
    flags.DEFINE_integer("max_query_length", 64, "SQuAD: question tokens kept.")
    flags.DEFINE_boolean(
        "double_unordered",
        None,
        "Pair tasks: also train on each pair with its sentences swapped. Unset: the "
        "reference's choice (on for mrpc and sts-b).",
    )
    flags.DEFINE_integer(
        "validation_size",
        0,
        "Carve this many examples (sentences for conll) out of the training file, by a "
        "--split_seed shuffle, into a `validation` split for model selection, so the dev set "
        "is only ever used for the final report. 0: none.",
    )
    flags.DEFINE_integer(
        "max_train_examples",
        0,
        "Keep this many training examples (after --validation_size is carved), drawn by the "
        "same shuffle, so a smaller set is a subset of every larger one. 0: all.",
    )
    flags.DEFINE_integer(
        "split_seed", 0, "Seed of the --validation_size/--max_train_examples shuffle."
    )


def carve(items: list, settings: Settings, source: str) -> tuple[list, list]:
    """(train, validation) from the training examples: one `split_seed`
    shuffle, the first `validation_size` to validation, then the first
    `max_train_examples` of the rest (all with 0) to train."""
    wanted = settings.validation_size + settings.max_train_examples
    if wanted > len(items):
        raise ValueError(
            f"{source}: {len(items)} training examples, fewer than --validation_size="
            f"{settings.validation_size} plus --max_train_examples={settings.max_train_examples}"
        )
    if not (settings.validation_size or settings.max_train_examples):
        return items, []
    order = list(items)
    random.Random(settings.split_seed).shuffle(order)
    validation, rest = order[: settings.validation_size], order[settings.validation_size :]
    return rest[: settings.max_train_examples or len(rest)], validation


def _with_validation(items_by_split: dict, settings: Settings, splits: dict) -> dict:
    train, validation = carve(items_by_split["train"], settings, splits["train"])
    if not validation:
        return dict(items_by_split, train=train)
    splits["validation"] = splits["train"]
    return {
        "train": train,
        "validation": validation,
        **{k: v for k, v in items_by_split.items() if k != "train"},
    }


def _feature(value):
    """An int64 or float list feature from a number or a list of numbers."""
    import tensorflow as tf

    values = value if isinstance(value, list) else [value]
    if isinstance(values[0], float):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _write_split(
    settings: Settings, split: str, source: str, features: list[dict[str, Any]], examples: int
) -> dict[str, Any]:
    """Writes `<split>.tfrecord` atomically; returns its finetune_info.json entry.

    Protobuf, not electra_tf.records' fast encoder: tagging labels are -1 on
    word-piece continuations and that encoder writes non-negative ints only.
    """
    import tensorflow as tf

    path = os.path.join(settings.output_dir, f"{split}.tfrecord")
    tmp = f"{path}.tmp-{os.getpid()}"
    with tf.io.TFRecordWriter(tmp) as writer:
        for feature in features:
            fields = {name: _feature(value) for name, value in feature.items()}
            example = tf.train.Example(features=tf.train.Features(feature=fields))
            writer.write(example.SerializeToString())
    os.replace(tmp, path)
    return {
        "file": f"{split}.tfrecord",
        "source": os.path.abspath(source),
        "examples": examples,
        "features": len(features),
    }


def _label_list(settings: Settings, train_labels: list[str], glue_labels) -> list[str] | None:
    if glue_labels is not None:
        return list(glue_labels)
    if settings.labels:
        return [label.strip() for label in settings.labels.split(",")]
    if settings.task == "conll":
        labels = sorted(set(train_labels) - {"O"})
        return ["O", *labels] if "O" in train_labels else labels
    return sorted(set(train_labels))


def _classification_features(examples, tokenizer, settings, label_ids) -> list[dict]:
    features = []
    for example in examples:
        feature = tokenizer.encode(example.text_a, example.text_b, settings.max_seq_length)
        if label_ids is None:
            try:
                feature["label"] = float(example.label)
            except ValueError:
                raise ValueError(
                    f"{example.source}: label {example.label!r} is not a number (regression)"
                ) from None
        else:
            if example.label not in label_ids:
                raise ValueError(
                    f"{example.source}: unknown label {example.label!r}; the labels are "
                    f"{', '.join(map(repr, label_ids))}"
                )
            feature["label_ids"] = label_ids[example.label]
        features.append(feature)
    return features


def _tagging_features(sentences, tokenizer, settings, label_ids) -> tuple[list[dict], int]:
    """Labels each word's first word-piece; returns the features and words cut off."""
    features, truncated = [], 0
    budget = settings.max_seq_length - 2
    for sentence in sentences:
        pieces, labels = [], []
        for index, (word, tag) in enumerate(zip(sentence.words, sentence.tags)):
            if tag not in label_ids:
                raise ValueError(
                    f"{sentence.path}:{sentence.line + index}: unknown tag {tag!r}; the tags are "
                    f"{', '.join(map(repr, label_ids))}"
                )
            word_pieces = tokenizer.tokenize(word) or ["[UNK]"]
            if len(pieces) + len(word_pieces) > budget:
                truncated += len(sentence.words) - index
                break
            pieces += word_pieces
            labels += [label_ids[tag]] + [IGNORE] * (len(word_pieces) - 1)
        tokens = ["[CLS]", *pieces, "[SEP]"]
        pad = settings.max_seq_length - len(tokens)
        features.append(
            {
                "input_ids": tokenizer.convert_tokens_to_ids(tokens) + [0] * pad,
                "input_mask": [1] * len(tokens) + [0] * pad,
                "segment_ids": [0] * settings.max_seq_length,
                "label_ids": [IGNORE, *labels, IGNORE] + [IGNORE] * pad,
            }
        )
    return features, truncated


def _squad_features(path, tokenizer, settings, training: bool):
    """Runs squad_lib's feature creation; returns (features, examples, squad features)."""
    from official.nlp.data import squad_lib

    version_2 = settings.task == "squad_v2"
    data = readers.check_squad_json(path, version_2)
    several = [
        qa
        for a in data["data"]
        for p in a["paragraphs"]
        for qa in p["qas"]
        if len(qa["answers"]) > 1
    ]
    if training and several:
        # Dev-style files list several reference answers; squad_lib wants exactly
        # one to train on, so train on the first (as Hugging Face's run_squad does).
        for qa in several:
            qa["answers"] = qa["answers"][:1]
        path = os.path.join(settings.output_dir, f".train-first-answers-{os.getpid()}.json")
        atomic_write_bytes(path, json.dumps(data).encode("utf-8"))
    try:
        examples = squad_lib.read_squad_examples(path, training, version_2)
    finally:
        if training and several:
            os.unlink(path)
    made = []

    def collect(feature, is_padding=False):
        made.append(feature)

    squad_lib.convert_examples_to_features(
        examples,
        tokenizer,
        settings.max_seq_length,
        settings.doc_stride,
        settings.max_query_length,
        is_training=training,
        output_fn=collect,
        batch_size=1,  # no padding features
    )
    records = [
        {
            "input_ids": f.input_ids,
            "input_mask": f.input_mask,
            "segment_ids": f.segment_ids,
            "unique_ids": f.unique_id,
            "start_positions": f.start_position or 0,
            "end_positions": f.end_position or 0,
            "is_impossible": int(bool(f.is_impossible)),
        }
        for f in made
    ]
    return records, examples, made


def _squad_eval_metadata(features) -> dict[str, Any]:
    """What decoding needs from each feature (JSON keys are strings; see electra_tf.squad)."""
    return {
        "features": [
            {
                "unique_id": f.unique_id,
                "example_index": f.example_index,
                "doc_span_index": f.doc_span_index,
                "tokens": f.tokens,
                "token_to_orig_map": f.token_to_orig_map,
                "token_is_max_context": f.token_is_max_context,
            }
            for f in features
        ]
    }


def build(settings: Settings, stream=sys.stdout) -> dict[str, Any]:
    """Prepares every split; returns the info written to finetune_info.json."""
    settings.validate()
    vocab = Vocab.load(settings.vocab)
    tokenizer = WordPieceTokenizer(vocab, settings.lower_case)
    os.makedirs(settings.output_dir, exist_ok=True)
    task = settings.task
    glue = readers.GLUE_TASKS.get(task)
    train_name, dev_name = DEFAULT_FILES.get(task, ("train.tsv", "dev.tsv"))
    train_name = settings.train_file or train_name
    dev_names = [settings.dev_file] if settings.dev_file else None
    if dev_names is None:
        dev_names = list(glue.dev_files) if glue else [dev_name]
    splits = {"train": readers.find_split(settings.input_dir, train_name)}
    for i, name in enumerate(dev_names):
        split = "dev" if i == 0 else "dev_" + name.split("_", 1)[-1].rsplit(".", 1)[0]
        splits[split] = readers.find_split(settings.input_dir, name)

    info: dict[str, Any] = {
        "task": task,
        "max_seq_length": settings.max_seq_length,
        "lower_case": settings.lower_case,
        "vocab_size": vocab.size,
        "vocab_sha256": vocab.sha256,
        "vocab_file": os.path.abspath(settings.vocab),
        "splits": {},
    }
    if settings.validation_size or settings.max_train_examples:
        info["carved_from_train"] = {
            "validation_size": settings.validation_size,
            "max_train_examples": settings.max_train_examples,
            "split_seed": settings.split_seed,
        }
    if task in SQUAD_TASKS:
        info.update(
            kind="span",
            labels=None,
            main_metric="f1",
            default_epochs=2.0,
            squad={
                "version_2": task == "squad_v2",
                "doc_stride": settings.doc_stride,
                "max_query_length": settings.max_query_length,
            },
        )
        for split, path in splits.items():
            training = split == "train"
            records, examples, features = _squad_features(path, tokenizer, settings, training)
            if not records:
                raise ValueError(f"{path}: no usable questions")
            info["splits"][split] = _write_split(settings, split, path, records, len(examples))
            if not training:
                atomic_write_json(
                    os.path.join(settings.output_dir, f"{split}_eval.json"),
                    _squad_eval_metadata(features),
                )
                with open(path, "rb") as f:
                    atomic_write_bytes(
                        os.path.join(settings.output_dir, f"{split}_gold.json"), f.read()
                    )
            print(f"{split}: {len(examples)} questions -> {len(records)} features", file=stream)
    elif task == "conll":
        sentences = {split: readers.read_conll(path) for split, path in splits.items()}
        # The label set of the whole training file, whatever part of it is kept.
        labels = _label_list(settings, [t for s in sentences["train"] for t in s.tags], None)
        sentences = _with_validation(sentences, settings, splits)
        label_ids = {label: i for i, label in enumerate(labels)}
        info.update(kind="tagging", labels=labels, main_metric="entity_f1")
        for split, items in sentences.items():
            if not items:
                raise ValueError(f"{splits[split]}: no sentences")
            features, truncated = _tagging_features(items, tokenizer, settings, label_ids)
            info["splits"][split] = _write_split(
                settings, split, splits[split], features, len(items)
            )
            info["splits"][split]["truncated_words"] = truncated
            note = f" ({truncated} words cut at --max_seq_length)" if truncated else ""
            print(f"{split}: {len(items)} sentences{note}", file=stream)
    else:
        if glue:
            examples = {split: readers.read_glue(task, path) for split, path in splits.items()}
            regression, pair = glue.labels is None, glue.text_b is not None
            main_metric = glue.main_metric
            info["default_epochs"] = glue.epochs
        else:
            examples = {
                split: readers.read_table(
                    path, settings.text_column, settings.text_b_column, settings.label_column
                )
                for split, path in splits.items()
            }
            regression, pair = settings.regression, settings.text_b_column is not None
            main_metric = "pearson" if regression else "accuracy"
        labels = None
        label_ids = None
        if not regression:
            labels = _label_list(
                settings, [e.label for e in examples["train"]], glue.labels if glue else None
            )
        examples = _with_validation(examples, settings, splits)
        if not regression:
            label_ids = {label: i for i, label in enumerate(labels)}
            if len(labels) < 2:
                raise ValueError(f"{splits['train']}: needs at least 2 labels, found {labels}")
        double = settings.double_unordered
        if double is None:
            double = bool(glue and glue.double_unordered)
        if double and not pair:
            raise ValueError(f"--double_unordered needs a pair task; {task} has one text")
        if double:
            examples["train"] = examples["train"] + [
                dataclasses.replace(e, text_a=e.text_b, text_b=e.text_a) for e in examples["train"]
            ]
        info.update(
            kind="regression" if regression else "classification",
            labels=labels,
            pair=pair,
            main_metric=main_metric,
            double_unordered=double,
        )
        for split, items in examples.items():
            if not items:
                raise ValueError(f"{splits[split]}: no examples")
            features = _classification_features(items, tokenizer, settings, label_ids)
            info["splits"][split] = _write_split(
                settings, split, splits[split], features, len(items)
            )
            print(f"{split}: {len(items)} examples", file=stream)
    with open(settings.vocab, "rb") as f:
        atomic_write_bytes(os.path.join(settings.output_dir, "vocab.txt"), f.read())
    atomic_write_json(os.path.join(settings.output_dir, INFO_FILE), info)
    return info


def command() -> None:
    """The command line's job, on the parsed flags."""
    F = flags.FLAGS
    build(Settings(**{f.name: getattr(F, f.name) for f in dataclasses.fields(Settings)}))


def run() -> None:
    cli.main(
        define_flags,
        command,
        required=("task", "input_dir", "output_dir", "vocab"),
        output_dirs=("output_dir",),
    )


if __name__ == "__main__":
    run()
