r"""TFLite conversion of an exported classifier with token-id inputs (the
`--target=ids` model of `electra_tf.tflite`), shared conversion settings, and
a parity report.

The model takes token ids (`input_ids`, `input_mask`, `segment_ids`, int32
[1, tokens], unpadded) and returns `logits` and `probabilities` (regression:
`predictions`). Next to it go `vocab.txt` and `tokenizer.json` (lower-casing,
length, special ids, labels): tokenize on the device with
`electra_tf/tokenizer.py` (pure Python), which gives the in-graph
tokenizer's ids. MediaPipe-ready files are `electra_tf.serving.mediapipe`'s.
"""

from __future__ import annotations

import csv
import json
import os
import time
from typing import Any

import numpy as np
import tensorflow as tf

from electra_tf.io_utils import atomic_write_bytes, atomic_write_json
from electra_tf.serving.comparison import comparison_report, in_batches
from electra_tf.serving.saved_model import load as load_saved_model
from electra_tf.tasks import get_task, kinds
from electra_tf.tokenizer import WordPieceTokenizer

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
INPUTS = ("input_ids", "input_mask", "segment_ids")


def read_task_file(saved_model: str) -> dict[str, Any]:
    """The export's task.json, with an error that says what --saved_model must be."""
    path = os.path.join(saved_model, "assets", "task.json")
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValueError(
            f"{path} not found: --saved_model must be an electra_tf.export version directory"
        ) from None


def read_task(saved_model: str) -> dict[str, Any]:
    """task.json of a classification or regression export (what the id model converts)."""
    task = read_task_file(saved_model)
    if task["kind"] not in kinds() or get_task(task["kind"]).single_output is None:
        raise ValueError(
            f"{saved_model} is a {task['kind']!r} model; TFLite conversion is for classifiers"
        )
    return task


def read_texts(path: str, limit: int | None = None) -> tuple[list[tuple], list[str] | None]:
    """(text, text_b) pairs and labels (None without a label column) from a TSV/CSV
    with a header naming `sentence`/`text` (+ `text_b`/`sentence2`) and `label`."""
    delimiter = "," if path.lower().endswith(".csv") else "\t"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE))
    if not rows:
        raise ValueError(f"{path}: empty file")
    header = rows[0]
    text = next((c for c in ("sentence", "text", "sentence1") if c in header), None)
    if text is None:
        raise ValueError(f"{path}:1: no 'sentence' or 'text' column in {header}")
    text_b = next((c for c in ("text_b", "sentence2") if c in header), None)
    label = "label" if "label" in header else None
    pairs, labels = [], [] if label else None
    for line, row in enumerate(rows[1:], 2):
        if not row:
            continue
        if len(row) != len(header):
            raise ValueError(f"{path}:{line}: {len(row)} columns but the header has {len(header)}")
        pairs.append((row[header.index(text)], row[header.index(text_b)] if text_b else None))
        if label:
            labels.append(row[header.index(label)])
        if limit and len(pairs) >= limit:
            break
    return pairs, labels


def _encode(tokenizer, pairs, length) -> list[dict[str, np.ndarray]]:
    """Unpadded [1, tokens] inputs, as the device feeds them."""
    samples = []
    for a, b in pairs:
        encoded = tokenizer.encode(a, b, length)
        n = sum(encoded["input_mask"])
        samples.append({k: np.asarray([v[:n]], np.int32) for k, v in encoded.items()})
    return samples


def convert(
    saved_model: str,
    output: str,
    quantize: str = "none",
    representative_data: str | None = None,
    num_calibration: int = 200,
) -> dict[str, Any]:
    """Writes `output` (+ vocab.txt, tokenizer.json beside it); returns the tokenizer settings."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"--quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    if quantize == "int8" and not representative_data:
        raise ValueError("--quantize=int8 needs --representative_data (a TSV of example texts)")
    task = read_task(saved_model)
    length = task["max_seq_length"]
    vocab_path = os.path.join(saved_model, "assets", "vocab.txt")
    tokenizer = WordPieceTokenizer(vocab_path, bool(task.get("lower_case", True)))
    loaded = load_saved_model(saved_model)
    predict = loaded.signatures["predict_ids"]
    single_output = get_task(task["kind"]).single_output
    # Inputs are [1, tokens] without padding: no work on padded positions.
    spec = tf.TensorSpec([1, None], tf.int32)

    @tf.function(input_signature=[spec, spec, spec])
    def serve(input_ids, input_mask, segment_ids):
        out = predict(input_ids=input_ids, input_mask=input_mask, segment_ids=segment_ids)
        if single_output == "predictions":
            return {"predictions": out["predictions"]}
        return {"logits": out["logits"], "probabilities": out["probabilities"]}

    samples = None
    if quantize == "int8":
        pairs, _ = read_texts(representative_data, num_calibration)
        samples = _encode(tokenizer, pairs, length)
    flatbuffer = to_tflite(serve.get_concrete_function(), loaded, quantize, samples)
    atomic_write_bytes(output, flatbuffer)
    directory = os.path.dirname(os.path.abspath(output))
    with open(vocab_path, "rb") as f:
        atomic_write_bytes(os.path.join(directory, "vocab.txt"), f.read())
    vocab = tokenizer.vocab
    settings = {
        "lower_case": tokenizer.lower_case,
        "max_seq_length": length,
        "cls_id": vocab.cls_id,
        "sep_id": vocab.sep_id,
        "pad_id": vocab.pad_id,
        "labels": task.get("labels"),
        "inputs": list(INPUTS),
        "pair": bool(task.get("pair")),
    }
    atomic_write_json(os.path.join(directory, "tokenizer.json"), settings)
    return settings


# Left in float under --quantize=int8: the element-wise arithmetic (residual
# and bias adds, LayerNorm's centring and scaling). Measured on the SST-2-like
# tiny classifier: with every op int8, 95.0% of the first 400 dev labels agreed
# with the float model; with these in float, 98.75% there and 99.3% over the
# whole dev set, at the same file size (matmuls, embedding lookups, softmax and
# GELU stay int8).
FLOAT_OPS_IN_INT8 = ("ADD", "MUL", "SUB")


def to_tflite(concrete, loaded, quantize: str, samples: list[dict] | None = None) -> bytes:
    """The TFLite flatbuffer of `concrete` with the --quantize settings.

    int8 quantizes weights and activations, calibrated on `samples` (input
    dicts, matched to the inputs by name), except `FLOAT_OPS_IN_INT8`; ops
    without an int8 kernel stay float rather than fail the conversion.
    """
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], loaded)
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize != "int8":
        return converter.convert()
    converter.representative_dataset = lambda: iter(samples)
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,
    ]
    # Selective quantization is TFLite's QuantizationDebugger's job.
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=lambda: iter(samples),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            denylisted_ops=list(FLOAT_OPS_IN_INT8)
        ),
    )
    return debugger.get_nondebug_quantized_model()


class LiteClassifier:
    """Runs a converted model with the ai-edge-litert interpreter.

    Example:
        >>> clf = LiteClassifier("edge/model.tflite")  # doctest: +SKIP
        >>> clf.predict(clf.tokenizer.encode("a fine film", max_length=clf.length))  # doctest: +SKIP
    """

    def __init__(self, path: str):
        from ai_edge_litert.interpreter import Interpreter

        directory = os.path.dirname(os.path.abspath(path))
        with open(os.path.join(directory, "tokenizer.json")) as f:
            self.settings = json.load(f)
        self.length = self.settings["max_seq_length"]
        self.tokenizer = WordPieceTokenizer(
            os.path.join(directory, "vocab.txt"), self.settings["lower_case"]
        )
        self.interpreter = Interpreter(model_path=path, num_threads=1)
        # The signature runner maps inputs and outputs by name (the tensors
        # themselves are called StatefulPartitionedCall:0, ...) and resizes the
        # inputs to each example's length.
        self.runner = self.interpreter.get_signature_runner("serving_default")

    def predict(self, encoded: dict) -> dict[str, np.ndarray]:
        """Outputs for one `tokenizer.encode(...)` result (its padding is dropped)."""
        n = int(np.sum(encoded["input_mask"]))
        inputs = {k: np.asarray(encoded[k], np.int32).reshape(1, -1)[:, :n] for k in INPUTS}
        return {name: value[0] for name, value in self.runner(**inputs).items()}


def parity_report(tflite_path: str, saved_model: str, eval_data: str) -> dict[str, Any]:
    """Compares the TFLite model with the SavedModel's `predict_ids` on labelled texts."""
    classifier = LiteClassifier(tflite_path)
    predict = load_saved_model(saved_model).signatures["predict_ids"]
    pairs, gold = read_texts(eval_data)
    encoded = [classifier.tokenizer.encode(a, b, classifier.length) for a, b in pairs]
    ids = {k: tf.constant([e[k] for e in encoded], tf.int32) for k in INPUTS}
    reference = in_batches(
        lambda a, b: predict(**{k: v[a:b] for k, v in ids.items()})["logits"].numpy(),
        len(encoded),
    )
    lite, seconds = [], []
    for e in encoded:
        start = time.perf_counter()
        lite.append(classifier.predict(e)["logits"])
        seconds.append(time.perf_counter() - start)
    return comparison_report(
        tflite_path,
        np.stack(lite),
        reference,
        seconds,
        "logit",
        gold,
        classifier.settings["labels"],
    )
