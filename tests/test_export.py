"""SavedModel export: signatures agree with the Keras model, TF Serving's layout and
loader (C++ LoadSavedModel), robustness to bad text, every head, converted checkpoints."""

from __future__ import annotations

import io
import json
import os
import pathlib
import shutil
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import REPO, run_cli

from electra_tf.checkpoints import load_task_model
from electra_tf.config import ElectraConfig
from electra_tf.finetuning.job import save_for_export
from electra_tf.modeling.task_model import ElectraTaskModel
from electra_tf.serving.saved_model import TEXT_OPS, export
from electra_tf.tasks import get_task
from electra_tf.tokenizer import WordPieceTokenizer

EDGE_TEXTS = ["", "   \t ", "word " * 3000, "naïve café 😀 ½"]
TINY = dict(vocab_size=30522, max_position_embeddings=64)


def _load(path):
    import tensorflow_text  # noqa: F401  (the text signature's ops)

    return tf.saved_model.load(path)


def _dev_texts(shared_data, n=48):
    with open(shared_data / "sst2_like" / "dev.tsv", encoding="utf-8") as f:
        return [line.split("\t")[0] for line in f][1 : n + 1]


def _keras_logits(model, tokenizer, texts, length, texts_b=None):
    encoded = [
        tokenizer.encode(a, b, length) for a, b in zip(texts, texts_b or [None] * len(texts))
    ]
    ids = {k: np.asarray([e[k] for e in encoded], np.int32) for k in encoded[0]}
    return model(ids, training=False), ids


@pytest.fixture(scope="module")
def sst2_export(sst2_classifier, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving") / "sst2"
    # Sharded, as served with one intra-op thread: the Keras parity and the C++
    # loader tests below then run the branching graph.
    return export(sst2_classifier, str(base), batch_shards=2)


def test_text_and_ids_signatures_match_keras(sst2_classifier, sst2_export, shared_data):
    model, task = load_task_model(sst2_classifier)
    tokenizer = WordPieceTokenizer(os.path.join(sst2_classifier, "vocab.txt"))
    texts = _dev_texts(shared_data) + EDGE_TEXTS
    expected, ids = _keras_logits(model, tokenizer, texts, 64)
    loaded = _load(sst2_export)
    tokenized = loaded.signatures["tokenize"](text=tf.constant(texts))
    width = tokenized["input_ids"].shape[1]
    np.testing.assert_array_equal(tokenized["input_ids"].numpy(), ids["input_ids"][:, :width])
    out = loaded.signatures["serving_default"](text=tf.constant(texts))
    # the in-graph tokenizer (FastBertTokenizer) and the Python one give the same ids,
    # so the logits agree, including the truncated 3000-word text
    np.testing.assert_allclose(out["logits"].numpy(), expected["logits"], atol=1e-5)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, atol=1e-6)
    labels = [task["labels"][i] for i in np.argmax(expected["logits"], -1)]
    assert [s.decode() for s in out["labels"].numpy()] == labels
    by_ids = loaded.signatures["predict_ids"](**{k: tf.constant(v) for k, v in ids.items()})
    np.testing.assert_allclose(by_ids["logits"].numpy(), expected["logits"], atol=1e-5)


def test_bad_inputs_give_well_formed_outputs(sst2_export):
    serve = _load(sst2_export).signatures["serving_default"]
    out = serve(text=tf.constant(["", "   ", b"\xff\xfe\xfd not utf-8", "x" * 100000]))
    assert out["logits"].shape == (4, 2) and np.isfinite(out["logits"].numpy()).all()
    empty = serve(text=tf.constant([], tf.string))
    assert empty["logits"].shape == (0, 2) and empty["labels"].shape == (0,)
    by_ids = _load(sst2_export).signatures["predict_ids"](
        input_ids=tf.zeros([0, 0], tf.int32),
        input_mask=tf.zeros([0, 0], tf.int32),
        segment_ids=tf.zeros([0, 0], tf.int32),
    )
    assert by_ids["probabilities"].shape == (0, 2)


def test_ids_that_do_not_fit_the_model_get_a_clear_error(sst2_export):
    predict = _load(sst2_export).signatures["predict_ids"]

    def call(ids, segments=None):
        ids = tf.constant(ids, tf.int32)
        segments = tf.zeros_like(ids) if segments is None else tf.constant(segments, tf.int32)
        return predict(input_ids=ids, input_mask=tf.ones_like(ids), segment_ids=segments)

    for ids, segments, message in [
        ([[101] + [7] * 500 + [102]], None, "more positions than the model takes \\(64"),
        ([[101, 30522, 102]], None, "an id >= 30522, the vocab size of the model"),
        ([[101, -1, 102]], None, "input_ids holds a negative id"),
        ([[101, 7, 102]], [[0, 2, 0]], "segment_ids holds an id >= 2"),
    ]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            call(ids, segments)
    assert call([[101, 7, 102]])["probabilities"].shape == (1, 2)


def test_versions_and_assets(sst2_classifier, tmp_path):
    base = tmp_path / "models" / "sst2"
    first = export(sst2_classifier, str(base))
    second = export(sst2_classifier, str(base))
    assert (first, second) == (str(base / "1"), str(base / "2"))
    with pytest.raises(ValueError, match="already exists; versions are never overwritten"):
        export(sst2_classifier, str(base), version=1)
    assets = base / "1" / "assets"
    assert sorted(os.listdir(assets)) == [
        "electra_config.json", "labels.txt", "task.json", "vocab.txt"
    ]  # fmt: skip
    assert (assets / "labels.txt").read_text() == "0\n1\n"
    assert json.loads((assets / "task.json").read_text())["max_seq_length"] == 64
    assert not [n for n in os.listdir(base) if n.startswith(".")]  # no staging left behind
    r = run_cli("electra_tf.export", f"--checkpoint={sst2_classifier}", f"--export_dir={base}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.strip() == ""  # no INFO chatter from the SavedModel writer
    assert f"exported {base / '3'}" in r.stdout


def _tiny_export(tmp_path, kind, labels=None, pair=False, squad=None, vocab_path=None, head=None):
    keras.utils.set_random_seed(3)  # an untrained model's picks, the same every run
    config = ElectraConfig.from_preset("tiny", **TINY)
    model = ElectraTaskModel(
        config,
        get_task(kind),
        num_labels=len(labels or [0]),
        with_null=bool(squad and squad["version_2"]),
        head=head,
    )
    model.build()
    data_dir = tmp_path / f"data-{kind}"
    data_dir.mkdir()
    shutil.copyfile(vocab_path, data_dir / "vocab.txt")
    info = {"task": kind, "kind": kind, "labels": labels, "pair": pair, "max_seq_length": 64,
            "lower_case": True, "squad": squad}  # fmt: skip
    save_for_export(model, info, str(data_dir), str(tmp_path / f"model-{kind}"))
    return model, export(str(tmp_path / f"model-{kind}"), str(tmp_path / f"serve-{kind}"))


def test_pair_classification_truncates_like_the_python_tokenizer(tmp_path, vocab_path, shared_data):
    model, path = _tiny_export(
        tmp_path, "classification", ["a", "b", "c"], True, vocab_path=vocab_path
    )
    texts = _dev_texts(shared_data, 8)
    texts_b = [t * (i + 1) for i, t in enumerate(reversed(texts))]  # some pairs need trimming
    expected, _ = _keras_logits(model, WordPieceTokenizer(vocab_path), texts, 64, texts_b)
    loaded = _load(path)
    tokenized = loaded.signatures["tokenize"](text=tf.constant(texts), text_b=tf.constant(texts_b))
    _, ids = _keras_logits(model, WordPieceTokenizer(vocab_path), texts, 64, texts_b)
    for name, value in tokenized.items():  # exactly the Python tokenizer's ids, trimmed alike
        width = value.shape[1]
        assert (ids[name][:, width:] == 0).all()
        np.testing.assert_array_equal(value.numpy(), ids[name][:, :width])
    out = loaded.signatures["serving_default"](text=tf.constant(texts), text_b=tf.constant(texts_b))
    np.testing.assert_allclose(out["logits"].numpy(), expected["logits"], atol=5e-5)


@pytest.mark.parametrize("head", ["joint", "independent"])
def test_question_answering_returns_passage_text(tmp_path, vocab_path, head):
    _, path = _tiny_export(
        tmp_path, "span", pair=True, squad={"version_2": True}, vocab_path=vocab_path, head=head
    )
    loaded = _load(path)
    passage = "In 1882, Albert Zahm built an early Wind Tunnel at Notre Dame."
    out = loaded.signatures["serving_default"](
        text=tf.constant(["Who built it?", ""]), text_b=tf.constant([passage, ""])
    )
    start, end = out["start_index"].numpy(), out["end_index"].numpy()
    assert (start <= end).all() and (end - start < 30).all()
    answer = out["answer"].numpy()[0].decode()
    has_answer = bool(out["has_answer"].numpy()[0])
    assert (answer in passage and answer.strip() == answer) if has_answer else answer == ""
    if has_answer:  # the answer is the passage's own text for the chosen word-pieces
        tokenizer = WordPieceTokenizer(vocab_path)
        question = len(tokenizer.tokenize("Who built it?"))
        pieces = tokenizer.tokenize(passage)[start[0] - question - 2 : end[0] - question - 1]
        assert tokenizer.tokenize(answer) == pieces
    assert out["answer"].numpy()[1] == b""
    assert set(out) >= {"null_score", "score", "has_answer"}
    # "No answer" above the head's default threshold: the reference's -2.75 on
    # the joint head's answerability logit, 0 on the independent head's margin.
    null, score = out["null_score"].numpy(), out["score"].numpy()
    margin = null if head == "joint" else null - score
    threshold = -2.75 if head == "joint" else 0.0
    np.testing.assert_array_equal(out["has_answer"].numpy(), margin <= threshold)
    # A batch whose passages are all empty still answers (nothing), row by row.
    empty = loaded.signatures["serving_default"](
        text=tf.constant(["", "Who?"]), text_b=tf.constant(["", ""])
    )
    assert empty["answer"].numpy().tolist() == [b"", b""]
    assert empty["start_index"].numpy().tolist() == empty["end_index"].numpy().tolist() == [0, 0]


def test_tagging_and_pretrained_discriminator(tmp_path, vocab_path, masked_data):
    _, path = _tiny_export(tmp_path, "tagging", ["O", "B-x", "I-x"], vocab_path=vocab_path)
    out = _load(path).signatures["serving_default"](text=tf.constant(["John lives in Paris"]))
    assert out["tags"].shape == out["tokens"].shape == (1, 6)
    assert [t.decode() for t in out["tokens"].numpy()[0]] == [
        "[CLS]", "john", "lives", "in", "paris", "[SEP]"
    ]  # fmt: skip

    from electra_tf.checkpoints import save_tower
    from electra_tf.modeling import ElectraDiscriminator

    disc = ElectraDiscriminator(ElectraConfig.from_preset("tiny", **TINY))
    disc.build()
    save_tower(disc, disc.config, str(tmp_path / "disc"))
    path = export(str(tmp_path / "disc"), str(tmp_path / "serve-disc"), vocab=vocab_path,
                  max_seq_length=64)  # fmt: skip
    task = json.loads((pathlib.Path(path) / "assets" / "task.json").read_text())
    assert task["kind"] == "pretrained" and task["lower_case"] is True  # judged from the vocab
    loaded = _load(path)
    assert {"serving_default", "predict_ids", "encode", "replaced_token_probs"} <= set(
        loaded.signatures
    )
    enc = loaded.signatures["encode"](text=tf.constant(["a b c", "a"]))
    assert enc["sequence_output"].shape == (2, 5, 64) and enc["cls_embedding"].shape == (2, 64)
    probs = loaded.signatures["replaced_token_probs"](text=tf.constant(["a b c", "a"]))
    p = probs["replaced_token_probs"].numpy()
    assert ((p >= 0) & (p <= 1)).all() and (p[1, 3:] == 0).all()  # padding is 0
    expected = tf.sigmoid(disc({k: v for k, v in _ids(vocab_path, ["a b c"]).items()}))
    np.testing.assert_allclose(p[:1], expected.numpy(), atol=1e-5)


def test_batch_shards_give_the_same_outputs(tmp_path, vocab_path):
    texts = ["John lives in Paris", "a", "the long and winding road to the sea", "", "b c", "d"]
    (tmp_path / "whole").mkdir()
    for kind, labels in (("classification", ["neg", "pos"]), ("tagging", ["O", "B-x", "I-x"])):
        model, whole = _tiny_export(tmp_path / "whole", kind, labels, vocab_path=vocab_path)
        shutil.copytree(tmp_path / "whole" / f"model-{kind}", tmp_path / f"model-{kind}")
        path = export(str(tmp_path / f"model-{kind}"), str(tmp_path / "sharded"), batch_shards=4)
        serve_whole = _load(whole).signatures["serving_default"]
        serve_sharded = _load(path).signatures["serving_default"]
        # 6 texts: four uneven shards; 2: fewer texts than shards, run whole; 0: empty.
        for batch in (texts, texts[:2], texts[:1], []):
            a = serve_whole(text=tf.constant(batch, tf.string))
            b = serve_sharded(text=tf.constant(batch, tf.string))
            assert a.keys() == b.keys()
            for key in a:
                assert a[key].shape == b[key].shape, (kind, key, len(batch))
                if a[key].dtype.is_floating:
                    np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), atol=1e-5)
                else:
                    np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
        # The model runs once per shard plus once in the small-batch branch.
        assert _matmuls(serve_sharded) == 5 * _matmuls(serve_whole)
    with pytest.raises(ValueError, match="--batch_shards must be >= 1"):
        export(str(tmp_path / "model-tagging"), str(tmp_path / "bad"), batch_shards=0)
    assert not (tmp_path / "bad").exists()


def _matmuls(signature) -> int:
    graph = signature.graph.as_graph_def()
    nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
    return sum("MatMul" in n.op for n in nodes)


def _ids(vocab_path, texts):
    tokenizer = WordPieceTokenizer(vocab_path)
    encoded = [tokenizer.encode(t, max_length=5) for t in texts]
    return {k: np.asarray([e[k] for e in encoded], np.int32) for k in encoded[0]}


def test_converted_hf_checkpoint_fine_tunes_and_exports(sst2_data, shared_data, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from electra_tf.checkpoints import save_tower
    from electra_tf.convert import huggingface
    from electra_tf.finetuning.job import FinetuneOptions, run_finetuning

    torch.manual_seed(0)
    hf_config = transformers.ElectraConfig(
        vocab_size=30522, embedding_size=32, hidden_size=64, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=128, max_position_embeddings=64,
    )  # fmt: skip
    transformers.ElectraForPreTraining(hf_config).save_pretrained(tmp_path / "hf")
    disc, _ = huggingface.load(str(tmp_path / "hf"))
    save_tower(disc, disc.config, str(tmp_path / "converted" / "discriminator"))
    history = run_finetuning(
        FinetuneOptions(
            data_dir=sst2_data,
            model_dir=str(tmp_path / "ft"),
            init_checkpoint=str(tmp_path / "converted"),
            num_train_epochs=0.05,
            adam_bias_correction=True,
        ),
        stream=io.StringIO(),
    )
    assert "accuracy" in history["final"]
    # the encoder really came from the HF weights
    model, _ = load_task_model(str(tmp_path / "ft" / "final"))
    path = export(str(tmp_path / "ft" / "final"), str(tmp_path / "serving"))
    out = _load(path).signatures["serving_default"](text=tf.constant(_dev_texts(shared_data, 4)))
    assert out["labels"].shape == (4,)
    assert model.backbone.embeddings is not None


@pytest.fixture(scope="session")
def cpp_loader(tmp_path_factory):
    """The C++ program (serving/load_saved_model.cc) built against the pip TensorFlow."""
    if shutil.which("g++") is None:
        pytest.skip("g++ not found: the C++ LoadSavedModel test needs a C++ compiler")
    lib = tf.sysconfig.get_lib()
    binary = tmp_path_factory.mktemp("cpp") / "load_saved_model"
    command = ["g++", "-O1", str(REPO / "serving" / "load_saved_model.cc"), "-o", str(binary),
               *tf.sysconfig.get_compile_flags(), f"-L{lib}", "-Wl,--no-as-needed",
               "-l:libtensorflow_cc.so.2", "-l:libtensorflow_framework.so.2",
               f"-Wl,-rpath,{lib}"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    return str(binary)


def _parse(stdout):
    results = {}
    for line in stdout.splitlines():
        signature, name, shape, values = line.split("\t")
        results[(signature, name)] = values.split(" ") if values else []
    return results


def test_cpp_load_saved_model_matches_python(cpp_loader, sst2_export, shared_data, tmp_path):
    import tensorflow_text

    ops_dir = os.path.join(os.path.dirname(tensorflow_text.__file__), "python", "ops")
    libs = [
        os.path.join(ops_dir, name)
        for name in ("_fast_bert_normalizer.so", "_fast_wordpiece_tokenizer.so")
    ]
    texts = _dev_texts(shared_data, 16) + ["", "naïve café 😀"]
    (tmp_path / "texts.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    ids = _ids(str(pathlib.Path(sst2_export) / "assets" / "vocab.txt"), texts[:4])
    rows = [";".join(" ".join(map(str, ids[k][i])) for k in ("input_ids", "input_mask", "segment_ids"))
            for i in range(4)]  # fmt: skip
    (tmp_path / "ids.txt").write_text("\n".join(rows) + "\n")
    r = subprocess.run(
        [cpp_loader, sst2_export, ",".join(libs), str(tmp_path / "texts.txt"), str(tmp_path / "ids.txt")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    cpp = _parse(r.stdout)
    loaded = _load(sst2_export)
    py_text = loaded.signatures["serving_default"](text=tf.constant(texts))
    py_ids = loaded.signatures["predict_ids"](**{k: tf.constant(v) for k, v in ids.items()})
    for signature, outputs in (("serving_default", py_text), ("predict_ids", py_ids)):
        np.testing.assert_allclose(
            np.asarray(cpp[(signature, "logits")], np.float64).reshape(-1, 2),
            outputs["logits"].numpy(), atol=1e-5,
        )  # fmt: skip
        assert cpp[(signature, "labels")] == [s.decode() for s in outputs["labels"].numpy()]
    # without tf-text's op libraries the text signature cannot load; say which ops it needs
    bare = subprocess.run([cpp_loader, sst2_export, "-", str(tmp_path / "texts.txt")],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bare.returncode != 0 and any(op in bare.stderr for op in TEXT_OPS)


def test_cpp_loader_runs_the_fill_mask_signature(cpp_loader, tmp_path):
    """TF Serving's loader takes an export with the generator's `fill_mask`
    signature, and answers as Python does."""
    import tensorflow_text

    fixture = REPO / "tests" / "fixtures" / "legacy_4f51619"
    path = export(
        str(fixture / "pretrain"),
        str(tmp_path / "serve"),
        vocab=str(fixture / "vocab.txt"),
        max_seq_length=32,
    )
    ops_dir = os.path.join(os.path.dirname(tensorflow_text.__file__), "python", "ops")
    libs = ",".join(
        os.path.join(ops_dir, name)
        for name in ("_fast_bert_normalizer.so", "_fast_wordpiece_tokenizer.so")
    )
    texts = ["the cat [MASK] on the mat .", "a big [MASK] dog [MASK] ."]
    (tmp_path / "texts.txt").write_text("".join(t + "\n" for t in texts))
    r = subprocess.run(
        [cpp_loader, path, libs, str(tmp_path / "texts.txt")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    cpp = _parse(r.stdout)
    python = _load(path).signatures["fill_mask"](text=tf.constant(texts))
    assert [int(v) for v in cpp[("fill_mask", "token_ids")]] == python[
        "token_ids"
    ].numpy().ravel().tolist()
    np.testing.assert_allclose(
        np.asarray(cpp[("fill_mask", "probabilities")], np.float64),
        python["probabilities"].numpy().ravel(),
        atol=1e-6,
    )
