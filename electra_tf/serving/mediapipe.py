"""TFLite files that MediaPipe Tasks loads as is: a text classifier or a text
embedder that takes raw text (tokenized on the device by MediaPipe's BERT
tokenizer from the vocab in the file's metadata).

The model's inputs are MediaPipe's BERT inputs, `input_word_ids`,
`input_mask`, `input_type_ids`, int32 [1, input_length]: MediaPipe pads
every text to that length. Padded positions get the bounded -10,000
attention bias (as the reference's), so they do not stretch the int8 range of
the attention scores.

    classifier   one output, the class probabilities [1, labels]; the labels
                 are in the metadata, so `TextClassifier.classify(text)`
                 returns named categories.
    embedder     one output, the L2-normalised embedding [1, hidden] ([CLS]
                 or the mean over real tokens); `TextEmbedder.embed(text)`.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import tensorflow as tf

from electra_tf.io_utils import atomic_write_bytes
from electra_tf.serving import mediapipe_metadata
from electra_tf.serving.comparison import comparison_report, in_batches
from electra_tf.serving.mediapipe_metadata import INPUT_NAMES
from electra_tf.serving.saved_model import load as load_saved_model
from electra_tf.serving.tflite_export import (
    QUANTIZATIONS,
    read_task_file,
    read_texts,
    to_tflite,
)
from electra_tf.tasks import get_task
from electra_tf.tokenizer import WordPieceTokenizer

TARGETS = ("classifier", "embedder")
POOLINGS = ("cls", "mean")


def convert(
    saved_model: str,
    output: str,
    target: str = "classifier",
    quantize: str = "none",
    representative_data: str | None = None,
    num_calibration: int = 200,
    input_length: int | None = None,
    pooling: str = "cls",
) -> dict[str, Any]:
    """Writes a MediaPipe-ready `output`; returns what was written.

    Args:
        saved_model: An `electra_tf.export` version directory.
        target: "classifier" (a single-text classification export) or
            "embedder" (any export: the encoder, pooled).
        quantize: none, float16, dynamic or int8 (see `electra_tf.tflite`).
        input_length: Tokens per input, [CLS] and [SEP] included (default:
            the model's training length). Longer texts are truncated.
        pooling: Embedder only: "cls" or "mean".
    """
    if target not in TARGETS:
        raise ValueError(f"--target must be one of {TARGETS} for MediaPipe, got {target!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"--pooling must be one of {POOLINGS}, got {pooling!r}")
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"--quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    task = read_task_file(saved_model)
    if target == "classifier" and not get_task(task["kind"]).edge_classifier(task):
        raise ValueError(
            f"{saved_model}: a {'pair ' if task.get('pair') else ''}{task['kind']} model; "
            "MediaPipe's TextClassifier takes one text and returns classes (use --target=ids "
            "for the id-input model, or --target=embedder)"
        )
    length = input_length or task.get("max_seq_length") or 128
    if length < 3:
        raise ValueError(f"--input_length must be >= 3, got {length}")
    vocab_path = os.path.join(saved_model, "assets", "vocab.txt")
    loaded = load_saved_model(saved_model)
    specs = [tf.TensorSpec([1, length], tf.int32, name=name) for name in INPUT_NAMES]
    if target == "classifier":
        predict = loaded.signatures["predict_ids"]

        @tf.function(input_signature=specs)
        def serve(input_word_ids, input_mask, input_type_ids):
            out = predict(**unpadded(input_word_ids, input_mask, input_type_ids))
            return {"probabilities": out["probabilities"]}

    else:
        encode = loaded.signatures["encode_ids"]

        @tf.function(input_signature=specs)
        def serve(input_word_ids, input_mask, input_type_ids):
            out = encode(**unpadded(input_word_ids, input_mask, input_type_ids))
            return {"embedding": pool(out, pooling)}

    tokenizer = WordPieceTokenizer(vocab_path, bool(task.get("lower_case", True)))
    samples = None
    if quantize == "int8":
        if not representative_data:
            raise ValueError("--quantize=int8 needs --representative_data (a TSV of example texts)")
        pairs, _ = read_texts(representative_data, num_calibration)
        samples = [padded_inputs(tokenizer, text, length) for text, _ in pairs]
    model = to_tflite(serve.get_concrete_function(), loaded, quantize, samples)
    model_bytes = len(model)
    if target == "classifier":
        model = mediapipe_metadata.classifier_metadata(model, vocab_path, task["labels"])
    else:
        model = mediapipe_metadata.embedder_metadata(model, vocab_path)
    atomic_write_bytes(output, model)
    return {
        "target": target,
        "input_length": length,
        "quantize": quantize,
        "bytes": len(model),
        "model_bytes": model_bytes,  # without the metadata (the vocab in it is fixed-size)
    }


def unpadded(input_word_ids, input_mask, input_type_ids) -> dict:
    """The real tokens of MediaPipe's right-padded inputs.

    Cutting the padding off inside the model means padded positions never
    enter the computation: the output is exactly the unpadded one, at every
    quantization (a padded position's attention bias would otherwise stretch
    the int8 range of the attention scores), and no time goes to padding.
    """
    n = tf.maximum(tf.reduce_sum(input_mask), 1)
    return {
        "input_ids": input_word_ids[:, :n],
        "input_mask": input_mask[:, :n],
        "segment_ids": input_type_ids[:, :n],
    }


def pool(encodings: dict, pooling: str):
    """L2-normalised [batch, hidden] embedding from `encode`/`encode_ids` outputs."""
    if pooling == "cls":
        pooled = encodings["cls_embedding"]
    else:
        # expand_dims, not [:, :, None]: TFLite has no new-axis strided slice.
        mask = tf.expand_dims(tf.cast(encodings["input_mask"], tf.float32), -1)
        total = tf.reduce_sum(encodings["sequence_output"] * mask, axis=1)
        pooled = total / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
    return tf.math.l2_normalize(pooled, axis=-1)


def padded_inputs(tokenizer: WordPieceTokenizer, text: str, length: int) -> dict[str, np.ndarray]:
    """One text as MediaPipe feeds it: [1, length], padded with zeros."""
    encoded = tokenizer.encode(text, None, length)
    return {
        name: np.asarray([encoded[key]], np.int32)
        for name, key in zip(INPUT_NAMES, ("input_ids", "input_mask", "segment_ids"))
    }


def classify(path: str, texts: list[str]) -> tuple[list[dict[str, float]], list[float]]:
    """Scores by label name for each text, through MediaPipe's TextClassifier, and
    the seconds each call took."""
    from mediapipe.tasks.python import text as mp_text

    results, seconds = [], []
    with mp_text.TextClassifier.create_from_model_path(path) as classifier:
        for text in texts:
            start = time.perf_counter()
            result = classifier.classify(text)
            seconds.append(time.perf_counter() - start)
            (head,) = result.classifications
            results.append({c.category_name: c.score for c in head.categories})
    return results, seconds


def embed(path: str, texts: list[str]) -> np.ndarray:
    """[texts, hidden] embeddings through MediaPipe's TextEmbedder."""
    from mediapipe.tasks.python import text as mp_text

    with mp_text.TextEmbedder.create_from_model_path(path) as embedder:
        return np.stack(
            [np.asarray(embedder.embed(t).embeddings[0].embedding, np.float32) for t in texts]
        )


def agreement_report(path: str, saved_model: str, eval_data: str) -> dict[str, Any]:
    """MediaPipe's classifier against the SavedModel's `serving_default` on a
    labelled TSV: agreement, probability gap, accuracy, size and latency."""
    labels = read_task_file(saved_model)["labels"]
    pairs, gold = read_texts(eval_data)
    texts = [text for text, _ in pairs]
    serve = load_saved_model(saved_model).signatures["serving_default"]
    reference = in_batches(
        lambda a, b: serve(text=tf.constant(texts[a:b]))["probabilities"].numpy(), len(texts)
    )
    scores, seconds = classify(path, texts)
    probabilities = np.asarray([[s[label] for label in labels] for s in scores])
    # MediaPipe's BERT tokenizer lower-cases ASCII only and keeps accents, where
    # BERT's uncased tokenizer (ours, in the SavedModel) strips them: texts
    # with non-ASCII letters can get other word-pieces on the device.
    ascii_only = np.asarray([t.isascii() for t in texts])
    return comparison_report(
        path,
        probabilities,
        reference,
        seconds,
        "probability",
        gold,
        labels,
        subsets={"ascii": ascii_only},
    )
