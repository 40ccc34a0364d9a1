"""The edge files in MediaPipe's own on-device runtime: a fine-tuned SST-2-like
classifier at every quantization, hostile input, and a text embedder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

mediapipe = pytest.importorskip("mediapipe", reason="mediapipe is in the test extras")

from helpers import run_cli  # noqa: E402

from electra_tf.serving import load as load_saved_model  # noqa: E402
from electra_tf.serving import mediapipe as edge  # noqa: E402
from electra_tf.serving.saved_model import export  # noqa: E402

TARGETS = {  # quantization: minimum label agreement with the SavedModel
    "none": 1.0,
    "float16": 0.99,
    "dynamic": 0.99,
    "int8": 0.98,
}


@pytest.fixture(scope="module")
def exported(sst2_classifier, tmp_path_factory):
    return export(sst2_classifier, str(tmp_path_factory.mktemp("serving") / "sst2"))


@pytest.fixture(scope="module")
def classifiers(exported, shared_data, tmp_path_factory):
    """Each quantization converted for MediaPipe and scored on the whole dev set."""
    out = tmp_path_factory.mktemp("mediapipe")
    dev = str(shared_data / "sst2_like" / "dev.tsv")
    train = str(shared_data / "sst2_like" / "train.tsv")
    results = {}
    for quantize in TARGETS:
        path = str(out / f"sst2-{quantize}.tflite")
        written = edge.convert(exported, path, "classifier", quantize, train, num_calibration=100)
        report = edge.agreement_report(path, exported, dev)
        results[quantize] = dict(report, path=path, model_bytes=written["model_bytes"])
    print(json.dumps(results, indent=1))
    return results


@pytest.mark.parametrize("quantize", list(TARGETS))
def test_mediapipe_classifier_agrees_with_the_saved_model(classifiers, quantize):
    """Raw dev sentences through MediaPipe's runtime vs the SavedModel's serving_default.

    Agreement is judged on the sentences both tokenizers split alike (ASCII:
    1,036 of 1,056); on all of them MediaPipe's accent handling costs a few
    labels (measured: 2 of 1,056 in float32)."""
    report = classifiers[quantize]
    assert report["examples"] == 1056 and report["ascii_examples"] > 1000
    assert report["ascii_label_agreement"] >= TARGETS[quantize]
    assert report["label_agreement"] >= TARGETS[quantize] - 0.005
    if quantize == "none":
        assert report["ascii_max_abs_probability_diff"] <= 1e-3


def test_dynamic_range_model_is_small(classifiers):
    """The quantized network is <= 1/3.5 of the float one; the files also carry the
    226 KB vocab in their metadata, which weighs on a model this tiny."""
    assert classifiers["dynamic"]["model_bytes"] * 3.5 <= classifiers["none"]["model_bytes"]
    assert classifiers["dynamic"]["file_bytes"] * 3 <= classifiers["none"]["file_bytes"]


def test_hostile_text_gives_well_formed_categories(classifiers):
    texts = [
        "",
        "   \t\n ",
        "word " * 4000,  # 20,000 characters
        "😀🎉 what a film 👍🏽",
        "bad \ufffd\ufffd bytes",  # invalid UTF-8, decoded with replacement
        "\u0000control\u0007chars",
        "ÉLECTRA naïve façade",
    ]
    scores, _ = edge.classify(classifiers["none"]["path"], texts)
    for text, result in zip(texts, scores):
        assert set(result) == {"0", "1"}, text
        values = np.asarray(list(result.values()))
        assert np.all(np.isfinite(values)) and abs(values.sum() - 1.0) < 1e-4, text


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_embedder_cosines_match_the_saved_model(exported, shared_data, tmp_path, pooling):
    path = str(tmp_path / f"embedder-{pooling}.tflite")
    edge.convert(exported, path, "embedder", pooling=pooling)
    lines = (shared_data / "sst2_like" / "dev.tsv").read_text().splitlines()[1:13]
    texts = [line.split("\t")[0] for line in lines]
    ours = edge.embed(path, texts)
    loaded = load_saved_model(exported)
    reference = edge.pool(loaded.signatures["encode"](text=tf.constant(texts)), pooling).numpy()
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(ours @ ours.T, reference @ reference.T, atol=1e-3)


def test_cli_writes_a_mediapipe_classifier_by_default(exported, shared_data, tmp_path):
    out = tmp_path / "sst2.tflite"
    r = run_cli(
        "electra_tf.tflite", f"--saved_model={exported}", f"--output={out}",
        "--quantize=dynamic", "--input_length=48",
        f"--eval_data={shared_data / 'sst2_like' / 'dev.tsv'}",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "--target=classifier" in r.stdout
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr
    assert "Ignored output_format" not in r.stderr
    report = json.loads((tmp_path / "sst2.tflite.report.json").read_text())
    assert report["examples"] == 1056 and report["label_agreement"] > 0.95
    scores, _ = edge.classify(str(out), ["a warm, funny, engaging film"])
    assert set(scores[0]) == {"0", "1"}
    pair = run_cli(
        "electra_tf.tflite", f"--saved_model={exported}", f"--output={tmp_path / 'x.tflite'}",
        "--target=embedder", "--pooling=max",
    )  # fmt: skip
    assert pair.returncode == 2 and "pooling" in pair.stderr
