"""TFLite variants of a fine-tuned classifier: each converts and meets its parity target."""

from __future__ import annotations

import json
import os

import pytest
from helpers import run_cli

from electra_tf.serving.saved_model import export
from electra_tf.serving.tflite_export import LiteClassifier, convert, parity_report


@pytest.fixture(scope="module")
def exported(sst2_classifier, tmp_path_factory):
    return export(sst2_classifier, str(tmp_path_factory.mktemp("serving") / "sst2"))


@pytest.fixture(scope="module")
def reports(exported, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("edge")
    dev = str(shared_data / "sst2_like" / "dev.tsv")
    train = str(shared_data / "sst2_like" / "train.tsv")
    results = {}
    for quantize in ("none", "float16", "dynamic", "int8"):
        path = str(out / quantize / "model.tflite")
        convert(exported, path, quantize, representative_data=train, num_calibration=100)
        results[quantize] = parity_report(path, exported, dev)
    print(json.dumps(results, indent=1))
    return results


def test_float32_is_exact(reports):
    r = reports["none"]
    assert r["examples"] == 1056
    assert r["max_abs_logit_diff"] < 1e-4 and r["label_agreement"] == 1.0
    assert r["reference_accuracy"] > 0.6  # the classifier has learned something to preserve


def test_float16_agreement(reports):
    assert reports["float16"]["label_agreement"] >= 0.99
    assert reports["float16"]["file_bytes"] < 0.6 * reports["none"]["file_bytes"]


@pytest.mark.parametrize("quantize", ["dynamic", "int8"])
def test_quantized_accuracy_within_a_point(reports, quantize):
    r = reports[quantize]
    assert abs(r["accuracy"] - r["reference_accuracy"]) <= 0.01


def test_int8_size(reports):
    assert reports["int8"]["file_bytes"] <= reports["none"]["file_bytes"] / 3.5


def test_device_side_files_and_cli(exported, shared_data, tmp_path):
    out = tmp_path / "edge" / "model.tflite"
    r = run_cli(
        "electra_tf.tflite", f"--saved_model={exported}", f"--output={out}",
        "--quantize=dynamic", "--target=ids", f"--eval_data={shared_data / 'sst2_like' / 'dev.tsv'}",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(os.listdir(out.parent)) == [
        "model.tflite", "model.tflite.report.json", "tokenizer.json", "vocab.txt"
    ]  # fmt: skip
    settings = json.loads((out.parent / "tokenizer.json").read_text())
    assert settings["max_seq_length"] == 64 and settings["labels"] == ["0", "1"]
    clf = LiteClassifier(str(out))
    probs = clf.predict(clf.tokenizer.encode("a warm , funny , engaging film .", max_length=64))
    assert probs["probabilities"].shape == (2,)
    bad = run_cli(
        "electra_tf.tflite", f"--saved_model={exported}", f"--output={tmp_path / 'x.tflite'}",
        "--quantize=int8",
    )  # fmt: skip
    assert bad.returncode == 2 and "--representative_data" in bad.stderr
