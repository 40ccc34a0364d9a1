r"""SavedModel export for TF Serving: raw text in, predictions out.

    python -m electra_tf.export --checkpoint=runs/sst2/final --export_dir=serving/sst2

writes `serving/sst2/<version>/` (TF Serving's layout; the next integer
version unless --version is given; an existing version is never touched).

Signatures (all with a variable batch size):
    serving_default   `text` (+ `text_b` for pair tasks and QA, where text is
                      the question and text_b the passage), tf.string [batch];
                      tokenized in-graph by tf-text's FastBertTokenizer.
    predict_ids       `input_ids`, `input_mask`, `segment_ids` int32
                      [batch, length]: for servers without the tf-text ops and
                      clients that tokenize themselves.
    tokenize          the text signature's tokenization alone (ids, mask,
                      segments), to check a client's own tokenizer against.
    encode            `text` -> the encoder's `sequence_output`, `cls_embedding`
                      and `input_mask` (any model: for embeddings and search).
    encode_ids        the same from ids (what TFLite text embedders convert).
    replaced_token_probs
                      text signature of a pre-trained discriminator (no head).

Outputs: classification `logits`, `probabilities`, `label_ids`, `labels`;
regression `predictions`; tagging `tag_ids`, `tags` (per word-piece, with
`tokens`); QA `start_index`, `end_index`, `score` (and `null_score`,
`has_answer` for SQuAD 2.0), plus `answer` (the passage's own text) from the
text signature. Assets: vocab.txt, electra_config.json, task.json, labels.txt.

The text signature needs tf-text's ops (FastBertNormalize,
FastWordpieceTokenizeWithOffsets): load tensorflow-text's op libraries in the
server (`import tensorflow_text` in Python; `_fast_bert_normalizer.so` and
`_fast_wordpiece_tokenizer.so` with TF Serving's --custom_op_paths or
`Env::LoadDynamicLibrary` in C++). `predict_ids` needs only core ops.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from typing import Any

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.checkpoints import (
    find_tower,
    find_towers,
    is_task_model_dir,
    load_task_model,
    load_tower,
)
from electra_tf.compat import sublayers
from electra_tf.config import ElectraConfig
from electra_tf.modeling.self_attention import ElectraSelfAttention
from electra_tf.serving.fill_mask import fill_mask_function
from electra_tf.vocab import Vocab

TEXT_OPS = ("FastBertNormalize", "FastWordpieceTokenizeWithOffsets")
PRETRAINED = "pretrained"  # task.json kind of a discriminator exported without a head
FILL_MASK_TOP_K = 10  # predictions per [MASK] in the `fill_mask` signature


class PretrainedOutputs:
    """The outputs of a pre-trained discriminator: encodings and replaced-token
    probabilities (the counterpart of a fine-tuning `Task`'s serving outputs)."""

    always_pair = False
    REPLACED = ("replaced_token_probs", "input_mask")

    def sequence(self, model, inputs):
        return model.encode(inputs, training=False)

    def outputs(self, model, inputs, module):
        sequence = self.sequence(model, inputs)
        probs = tf.sigmoid(tf.cast(model.head(sequence), tf.float32))
        mask = tf.cast(inputs["input_mask"], tf.float32)
        return {
            "sequence_output": tf.cast(sequence, tf.float32),
            "cls_embedding": tf.cast(sequence[:, 0], tf.float32),
            "replaced_token_probs": probs * mask,
            "input_mask": inputs["input_mask"],
        }

    def text_outputs(self, outputs, passage, module):
        return outputs

    def extra_signatures(self, module) -> dict:
        spec = tf.TensorSpec([None], tf.string, name="text")

        def subset(names):
            return tf.function(
                lambda text: {k: v for k, v in module.text_fn(text).items() if k in names},
                input_signature=[spec],
            )

        signatures = {"replaced_token_probs": subset(self.REPLACED)}
        if module.generator is not None:  # exported from a pre-training model_dir
            signatures["fill_mask"] = fill_mask_function(
                module, module.generator, Vocab.load(module.vocab_path), FILL_MASK_TOP_K
            )
        return signatures


class TaskOutputs:
    """Serving outputs of a fine-tuned `ElectraTaskModel`, by its task."""

    def __init__(self, task):
        self.task = task
        self.always_pair = task.always_pair

    def sequence(self, model, inputs):
        return model.backbone(inputs, training=False)

    def outputs(self, model, inputs, module):
        raw = {
            k: tf.cast(v, tf.float32) if v.dtype.is_floating else v
            for k, v in model(inputs, training=False).items()
        }
        return self.task.serving_outputs(raw, inputs, module)

    def text_outputs(self, outputs, passage, module):
        return self.task.text_outputs(outputs, passage, module)

    def extra_signatures(self, module) -> dict:
        return {}


class ServingModule(tf.Module):
    """The model plus in-graph tokenization and decoding, as concrete signatures.

    Args:
        model: An `ElectraTaskModel`, or an `ElectraDiscriminator` (no head).
        task: The task description (`task.json`; kind "pretrained" for a
            discriminator).
        vocab_path: The vocab the model was trained with.
        max_seq_length: Longest tokenized input; longer text is truncated
            longest-segment-first.
        max_answer_length: QA: longest answer in word-pieces.
        batch_shards: Text signatures split a batch of at least this many
            texts into this many parts that run side by side. With one
            intra-op thread per op (the fastest setting for single requests on
            a CPU), this is what spreads one large batch over the cores.
        generator: A pre-training run's `ElectraGenerator` (the discriminator's
            export then also has a `fill_mask` signature), or None.
    """

    def __init__(
        self,
        model,
        task: dict[str, Any],
        vocab_path: str,
        max_seq_length: int,
        max_answer_length: int = 30,
        batch_shards: int = 1,
        generator=None,
    ):
        super().__init__()
        self.generator = generator
        self.vocab_path = vocab_path
        if batch_shards < 1:
            raise ValueError(f"--batch_shards must be >= 1, got {batch_shards}")
        self.batch_shards = batch_shards
        self.model = model
        # A task model's own task object: it knows the head layout it was built with.
        self.adapter = (
            PretrainedOutputs() if task["kind"] == PRETRAINED else TaskOutputs(model.task)
        )
        self.pair = bool(task.get("pair")) or self.adapter.always_pair
        self.labels = list(task.get("labels") or [])
        self.max_seq_length = max_seq_length
        self.max_answer_length = max_answer_length
        self.version_2 = bool((task.get("squad") or {}).get("version_2"))
        # SQuAD 2.0: what fine-tuning evaluated with (task.json), else the head's default.
        threshold = task.get("null_threshold")
        if threshold is None and hasattr(getattr(model, "task", None), "null_threshold"):
            threshold = model.task.null_threshold()
        self.null_threshold = float(threshold or 0.0)
        with open(vocab_path, encoding="utf-8") as f:
            vocab = [line.rstrip("\n").rstrip("\r") for line in f]
        if vocab and vocab[-1] == "":
            vocab.pop()
        self.vocab_table = tf.constant(vocab)
        index = {token: i for i, token in enumerate(vocab)}
        self.cls_id, self.sep_id = index["[CLS]"], index["[SEP]"]
        self.tokenizer = tf_text.FastBertTokenizer(
            vocab=vocab,
            token_out_type=tf.int64,
            lower_case_nfd_strip_accents=bool(task.get("lower_case", True)),
            unknown_token="[UNK]",
        )
        self._tf_text = tf_text

    # ---- tokenization -------------------------------------------------

    def _tokenize(self, text, text_b=None):
        """Model inputs [batch, longest], the cleaned `text_b`, and its byte offsets."""
        segments, offsets, clean_b = [], None, None
        for i, t in enumerate([text] if text_b is None else [text, text_b]):
            # Invalid UTF-8 would fail deep inside the tokenizer: replace it (U+FFFD -> [UNK]).
            t = tf.strings.unicode_transcode(
                t, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
            )
            if i == 1:
                clean_b = t
                tokens, starts, ends = self.tokenizer.tokenize_with_offsets(t)
                offsets = (starts, ends)
            else:
                tokens = self.tokenizer.tokenize(t)
            segments.append(tokens)
        if len(segments) == 1:
            segments = [segments[0][:, : self.max_seq_length - 2]]
        else:
            segments = self._trim_pair(*segments)
        ids, segment_ids = self._tf_text.combine_segments(
            segments, start_of_sequence_id=self.cls_id, end_of_segment_id=self.sep_id
        )
        inputs = {
            "input_ids": tf.cast(ids.to_tensor(0), tf.int32),
            "input_mask": tf.cast(tf.ones_like(ids).to_tensor(0), tf.int32),
            "segment_ids": tf.cast(segment_ids.to_tensor(0), tf.int32),
        }
        first_length = segments[0].row_lengths()
        return inputs, (clean_b, offsets, first_length)

    def _trim_pair(self, a, b):
        """BERT's longest-first truncation (`electra_tf.tokenizer.truncate_pair`), in
        closed form. tf-text's ShrinkLongestTrimmer breaks ties the other way."""
        budget = tf.constant(self.max_seq_length - 3, tf.int64)
        la, lb = a.row_lengths(), b.row_lengths()
        overflow = la + lb - budget
        fits = overflow <= 0
        a_longer = la - lb >= overflow  # only `a` needs to lose tokens
        b_longer = lb - la >= overflow
        half_up, half_down = budget - budget // 2, budget // 2  # a tie costs `b` first
        keep_a = tf.where(fits | b_longer, la, tf.where(a_longer, la - overflow, half_up))
        keep_b = tf.where(fits | a_longer, lb, tf.where(b_longer, lb - overflow, half_down))

        def cut(ragged, keep):
            positions = tf.ragged.range(ragged.row_lengths())
            return tf.ragged.boolean_mask(ragged, positions < keep[:, None])

        return [cut(a, keep_a), cut(b, keep_b)]

    # ---- heads ---------------------------------------------------------

    @staticmethod
    def _pad_to_one(inputs):
        # An empty batch tokenizes to width 0; the heads read position 0, so pad
        # (mask 0) to width >= 1. Padding columns do not change any real output.
        width = tf.shape(inputs["input_ids"])[1]
        pad = [[0, 0], [0, tf.maximum(1 - width, 0)]]
        return {k: tf.pad(v, pad) for k, v in inputs.items()}

    def _outputs(self, inputs):
        return self.adapter.outputs(self.model, self._pad_to_one(inputs), self)

    def _sharded_outputs(self, inputs):
        """`_outputs` on `batch_shards` slices of the batch, as independent
        branches of the graph, so that the executor's inter-op threads run them
        at once; batches smaller than that run whole."""
        shards = self.batch_shards
        if shards == 1:
            return self._outputs(inputs)
        inputs = self._pad_to_one(inputs)  # once, so every shard has the same width

        def run(batch):
            return self.adapter.outputs(self.model, batch, self)

        n = tf.shape(inputs["input_ids"])[0]

        def split():
            bounds = [n * i // shards for i in range(shards + 1)]
            parts = [
                run({k: v[bounds[i] : bounds[i + 1]] for k, v in inputs.items()})
                for i in range(shards)
            ]
            return tf.nest.map_structure(lambda *xs: tf.concat(xs, 0), *parts)

        return tf.cond(n >= shards, split, lambda: run(inputs))

    # ---- signatures ----------------------------------------------------

    def text_fn(self, text, text_b=None):
        inputs, passage = self._tokenize(text, text_b)
        return self.adapter.text_outputs(self._sharded_outputs(inputs), passage, self)

    def _checked_ids(self, inputs, signature: str):
        """Token-id inputs as given, once they fit the model: else a clear
        InvalidArgumentError (not a Slice or Gather error from deep inside)."""
        config = self.model.config
        ids, mask, segments = (inputs[k] for k in ("input_ids", "input_mask", "segment_ids"))
        checks = [
            tf.debugging.assert_equal(
                tf.shape(ids), tf.shape(mask),
                message=f"{signature}: input_ids and input_mask must have the same shape",
            ),
            tf.debugging.assert_equal(
                tf.shape(ids), tf.shape(segments),
                message=f"{signature}: input_ids and segment_ids must have the same shape",
            ),
            tf.debugging.assert_less_equal(
                tf.shape(ids)[1], config.max_position_embeddings,
                message=f"{signature}: input_ids has more positions than the model takes "
                f"({config.max_position_embeddings}, max_position_embeddings); truncate",
            ),
            tf.debugging.assert_non_negative(
                ids, message=f"{signature}: input_ids holds a negative id"
            ),
            tf.debugging.assert_less(
                ids, config.vocab_size,
                message=f"{signature}: input_ids holds an id >= {config.vocab_size}, the "
                "vocab size of the model",
            ),
            tf.debugging.assert_non_negative(
                segments, message=f"{signature}: segment_ids holds a negative id"
            ),
            tf.debugging.assert_less(
                segments, config.type_vocab_size,
                message=f"{signature}: segment_ids holds an id >= {config.type_vocab_size}",
            ),
        ]  # fmt: skip
        with tf.control_dependencies(checks):
            return {k: tf.identity(v) for k, v in inputs.items()}

    def encode_fn(self, inputs):
        """The encoder's final states, [CLS]'s, and the mask (for pooling)."""
        inputs = self._pad_to_one(inputs)
        sequence = tf.cast(self.adapter.sequence(self.model, inputs), tf.float32)
        return {
            "sequence_output": sequence,
            "cls_embedding": sequence[:, 0],
            "input_mask": inputs["input_mask"],
        }

    def ids_fn(self, input_ids, input_mask, segment_ids):
        inputs = {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}
        return self._outputs(self._checked_ids(inputs, "predict_ids"))

    def signatures(self) -> dict[str, Any]:
        ids_spec = tf.TensorSpec([None, None], tf.int32)
        if self.pair:
            text = tf.function(
                lambda text, text_b: self.text_fn(text, text_b),
                input_signature=[
                    tf.TensorSpec([None], tf.string, name="text"),
                    tf.TensorSpec([None], tf.string, name="text_b"),
                ],
            )
        else:
            text = tf.function(
                lambda text: self.text_fn(text),
                input_signature=[tf.TensorSpec([None], tf.string, name="text")],
            )
        ids = tf.function(
            lambda input_ids, input_mask, segment_ids: self.ids_fn(
                input_ids, input_mask, segment_ids
            ),
            input_signature=[
                tf.TensorSpec.from_spec(ids_spec, name="input_ids"),
                tf.TensorSpec.from_spec(ids_spec, name="input_mask"),
                tf.TensorSpec.from_spec(ids_spec, name="segment_ids"),
            ],
        )
        if self.pair:
            tokenize = tf.function(
                lambda text, text_b: self._tokenize(text, text_b)[0],
                input_signature=text.input_signature,
            )
        else:
            tokenize = tf.function(
                lambda text: self._tokenize(text)[0], input_signature=text.input_signature
            )
        signatures = {"serving_default": text, "predict_ids": ids, "tokenize": tokenize}
        # Encodings of one text (also for pair models: the first segment alone),
        # for embedding and search; `encode_ids` is what TFLite embedders convert.
        signatures["encode"] = tf.function(
            lambda text: self.encode_fn(self._tokenize(text)[0]),
            input_signature=[tf.TensorSpec([None], tf.string, name="text")],
        )
        signatures["encode_ids"] = tf.function(
            lambda input_ids, input_mask, segment_ids: self.encode_fn(
                self._checked_ids(
                    {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids},
                    "encode_ids",
                )
            ),
            input_signature=ids.input_signature,
        )
        signatures.update(self.adapter.extra_signatures(self))
        return signatures


def load(path: str):
    """Loads an export (a `<base>/<name>/<version>/` directory) in Python.

    The in-graph tokenizer uses TensorFlow Text ops, which TensorFlow only
    knows once `tensorflow_text` is imported (else "Op type not registered
    'FastBertNormalize'"); this module imports it, so this is the one call a
    user needs:

        >>> from electra_tf.serving import load  # doctest: +SKIP
        >>> model = load("serving/sst2/1")  # doctest: +SKIP
        >>> model.signatures["serving_default"](tf.constant(["a fine film"]))  # doctest: +SKIP
    """
    if not tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        raise ValueError(f"{path}: no saved_model.pb (pass an export's version directory)")
    return tf.saved_model.load(path)


def load_for_export(checkpoint: str):
    """(model, task, vocab path or None) from a fine-tuned `final/` (or `best/`) directory or a
    pre-trained discriminator (a tower directory or a pre-training --model_dir)."""
    if is_task_model_dir(checkpoint):
        model, task = load_task_model(checkpoint)
        directory = checkpoint
    else:
        directory = find_tower(checkpoint, "--checkpoint")
        model = load_tower(directory, "discriminator")
        task = {"kind": PRETRAINED, "labels": None, "lower_case": None}
    vocab = os.path.join(directory, "vocab.txt")
    if not os.path.exists(vocab):
        vocab = None
    return model, task, vocab


def next_version(base: str) -> int:
    versions = [int(n) for n in os.listdir(base) if n.isdigit()] if os.path.isdir(base) else []
    return max(versions, default=0) + 1


def export(
    checkpoint: str,
    export_dir: str,
    version: int | None = None,
    vocab: str | None = None,
    max_seq_length: int | None = None,
    max_answer_length: int = 30,
    lower_case: bool | None = None,
    batch_shards: int = 1,
) -> str:
    """Writes `export_dir/<version>/`; returns its path. Never overwrites a version.

    `batch_shards`: see `ServingModule`; match it to the server's cores when
    it runs one intra-op thread per op.
    """
    model, task, found_vocab = load_for_export(checkpoint)
    vocab = vocab or found_vocab
    if not vocab:
        raise ValueError(
            f"--checkpoint={checkpoint} has no vocab.txt; pass --vocab (the vocab it was trained on)"
        )
    if lower_case is not None:
        task["lower_case"] = lower_case
    elif task.get("lower_case") is None:  # a pre-trained tower: judge by its vocab
        task["lower_case"] = Vocab.load(vocab).uncased
    config: ElectraConfig = model.config
    max_seq_length = max_seq_length or task.get("max_seq_length") or 128
    if max_seq_length > config.max_position_embeddings:
        raise ValueError(
            f"--max_seq_length={max_seq_length} exceeds the model's "
            f"max_position_embeddings={config.max_position_embeddings}"
        )
    with open(vocab, encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    if vocab_size != config.vocab_size:
        raise ValueError(
            f"{vocab}: {vocab_size} tokens but the model's vocab_size is {config.vocab_size}"
        )
    task = dict(task, max_seq_length=max_seq_length)
    generator = None
    if task["kind"] == PRETRAINED:  # a pre-training model_dir's generator, if it has one
        towers = find_towers(checkpoint, ("generator",), itself=None)
        if "generator" in towers:
            generator = load_tower(towers["generator"], "generator")
    for part in (model, generator):  # loaded for this export alone
        for layer in sublayers(part) if part is not None else ():
            if isinstance(layer, ElectraSelfAttention):
                layer.freeze_for_inference()
    # Before anything is written: it checks batch_shards.
    module = ServingModule(
        model, task, vocab, max_seq_length, max_answer_length, batch_shards, generator
    )
    if version is None:
        version = next_version(export_dir)
    if version <= 0:
        raise ValueError(f"--version must be a positive integer, got {version}")
    target = os.path.join(export_dir, str(version))
    if os.path.exists(target):
        raise ValueError(f"{target} already exists; versions are never overwritten")
    os.makedirs(export_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=export_dir)
    try:
        assets = tempfile.mkdtemp(prefix="assets-", dir=staging)
        files = {"vocab.txt": os.path.join(assets, "vocab.txt")}
        shutil.copyfile(vocab, files["vocab.txt"])
        for name, value in (("task.json", task), ("electra_config.json", config.to_dict())):
            files[name] = os.path.join(assets, name)
            with open(files[name], "w") as f:
                json.dump(value, f, indent=2, sort_keys=True)
        if module.labels:
            files["labels.txt"] = os.path.join(assets, "labels.txt")
            with open(files["labels.txt"], "w", encoding="utf-8") as f:
                f.write("".join(label + "\n" for label in module.labels))
        module.assets = {
            re.sub(r"\W", "_", name): tf.saved_model.Asset(path) for name, path in files.items()
        }
        out = os.path.join(staging, "model")
        signatures = {name: fn.get_concrete_function() for name, fn in module.signatures().items()}
        # Track the tf.Variables the traced functions captured (as keras'
        # ExportArchive does). Tracking the Keras model alone saves its Keras
        # variables as other objects: Python's loader copes, but C++
        # LoadSavedModel (TF Serving) leaves the captured ones uninitialised.
        captured = {}
        for concrete in signatures.values():
            for variable in concrete.variables:
                captured.setdefault(id(variable), variable)
        module.captured_variables = list(captured.values())
        tf.saved_model.save(module, out, signatures=signatures)
        os.rename(out, target)  # atomic; fails rather than replace a version made meanwhile
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
