"""Checkpoint interop: Hugging Face, Google TF1 and keras-hub weights, with numerical parity."""

import json

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="parity tests need torch + transformers (pip install -e '.[test]')"
)
transformers = pytest.importorskip("transformers")

from helpers import run_cli  # noqa: E402

from electra_tf.convert import huggingface  # noqa: E402

IDS = np.array([[101, 7, 8, 9, 10, 11, 102, 0], [101, 20, 21, 102, 30, 31, 102, 0]], np.int64)
MASK = (IDS != 0).astype(np.int64)
SEGS = np.array([[0] * 8, [0, 0, 0, 0, 1, 1, 1, 0]], np.int64)
POS = np.array([[1, 3], [2, 5]])


def _hf_config(**kw):
    base = dict(
        vocab_size=120,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=64,
        hidden_act="gelu",
    )
    base.update(kw)
    return transformers.ElectraConfig(**base)


def _ours_inputs():
    return {
        "input_ids": IDS.astype(np.int32),
        "input_mask": MASK.astype(np.int32),
        "segment_ids": SEGS.astype(np.int32),
        "masked_lm_positions": POS.astype(np.int32),
    }


def _hf_run(model):
    with torch.no_grad():
        return model(
            input_ids=torch.tensor(IDS),
            attention_mask=torch.tensor(MASK),
            token_type_ids=torch.tensor(SEGS),
            output_hidden_states=True,
        )


def _close(a, b, mask=None, tol=1e-4):
    a, b = np.asarray(a), np.asarray(b)
    if mask is not None:
        a, b = a[mask.astype(bool)], b[mask.astype(bool)]
    assert np.abs(a - b).max() < tol, np.abs(a - b).max()


def test_hf_discriminator_parity(tmp_path):
    torch.manual_seed(0)
    hf = transformers.ElectraForPreTraining(_hf_config()).eval()
    hf.save_pretrained(tmp_path, safe_serialization=True)
    ours, arch = huggingface.load(str(tmp_path))
    assert arch == "ElectraForPreTraining"
    out = _hf_run(hf)
    x = _ours_inputs()
    _close(ours.encode(x), out.hidden_states[-1].numpy(), MASK)
    _close(ours(x), out.logits.numpy(), MASK)


def test_hf_generator_and_encoder_parity(tmp_path):
    torch.manual_seed(1)
    hf = transformers.ElectraForMaskedLM(
        _hf_config(hidden_size=24, num_attention_heads=3, hidden_act="gelu_new")
    ).eval()
    hf.save_pretrained(tmp_path / "gen", safe_serialization=True)
    ours, arch = huggingface.load(str(tmp_path / "gen"))
    assert arch == "ElectraForMaskedLM" and ours.config.hidden_act == "gelu_approximate"
    logits = _hf_run(hf).logits.numpy()
    _close(ours(_ours_inputs()), np.take_along_axis(logits, POS[..., None], 1))

    base = transformers.ElectraModel(_hf_config()).eval()
    base.save_pretrained(tmp_path / "enc", safe_serialization=True)
    encoder, arch = huggingface.load(str(tmp_path / "enc"))
    assert arch == "ElectraModel"
    _close(encoder(_ours_inputs()), _hf_run(base).last_hidden_state.numpy(), MASK)


def test_export_to_hf_loads_without_missing_or_unexpected_weights(tmp_path):
    from electra_tf.config import ElectraConfig
    from electra_tf.modeling import ElectraPretrainer

    model = ElectraPretrainer(ElectraConfig.from_preset("tiny", vocab_size=120, dropout=0.0))
    model.build()
    x = _ours_inputs()
    for tower, cls in (
        (model.discriminator, transformers.ElectraForPreTraining),
        (model.generator, transformers.ElectraForMaskedLM),
    ):
        out_dir = tmp_path / tower.name
        huggingface.save(tower, str(out_dir))
        hf, info = cls.from_pretrained(out_dir, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], info
        hf.eval()
        out = _hf_run(hf).logits.numpy()
        if cls is transformers.ElectraForMaskedLM:
            _close(tower(x), np.take_along_axis(out, POS[..., None], 1))
        else:
            _close(tower(x), out, MASK)


def test_wrong_architecture_or_shape_is_named(tmp_path):
    hf = transformers.ElectraForPreTraining(_hf_config())
    hf.save_pretrained(tmp_path, safe_serialization=True)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 1}))
    with pytest.raises(ValueError, match="electra.encoder.layer.1"):
        huggingface.load(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({**config, "intermediate_size": 40}))
    with pytest.raises(ValueError, match="intermediate/dense/kernel.*does not fit"):
        huggingface.load(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(ValueError, match="not an ELECTRA model"):
        huggingface.load(str(tmp_path))


def _write_tf1_checkpoint(weights, path, extra=None):
    """A checkpoint with exactly the reference's variable names (TF1 Saver)."""
    import tensorflow as tf

    with tf.Graph().as_default():
        variables = [
            tf.compat.v1.get_variable(n, initializer=v)
            for n, v in {**weights, **(extra or {})}.items()
        ]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return saver.save(sess, str(path))


def _tf1_discriminator_logits(
    w: dict, inputs: dict, num_heads: int, tanh_gelu: bool = False
) -> np.ndarray:
    """The reference's discriminator forward pass (google-research/electra
    model/modeling.py + pretrain discriminator head), in float64 numpy from the
    TF1 variable names: LayerNorm eps 1e-12, -10000 attention mask, GELU with
    erf (`tanh_gelu` swaps in the approximation, to show the two differ)."""
    from scipy.special import erf

    w = {name: np.asarray(value, np.float64) for name, value in w.items()}

    def gelu(x):
        if tanh_gelu:
            return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
        return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))

    def layer_norm(x, scope):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * w[f"{scope}/gamma"] + w[f"{scope}/beta"]

    def dense(x, scope):
        return x @ w[f"{scope}/kernel"] + w[f"{scope}/bias"]

    ids, mask, segments = (
        np.asarray(inputs[k]) for k in ("input_ids", "input_mask", "segment_ids")
    )
    length = ids.shape[1]
    e = "electra/embeddings"
    x = w[f"{e}/word_embeddings"][ids] + w[f"{e}/position_embeddings"][:length]
    x = layer_norm(x + w[f"{e}/token_type_embeddings"][segments], f"{e}/LayerNorm")
    if "electra/embeddings_project/kernel" in w:
        x = dense(x, "electra/embeddings_project")
    bias = (1.0 - mask[:, None, None, :]) * -10000.0
    layer = 0
    while f"electra/encoder/layer_{layer}/attention/self/query/kernel" in w:
        p = f"electra/encoder/layer_{layer}"
        heads = lambda t: t.reshape(t.shape[0], length, num_heads, -1).transpose(0, 2, 1, 3)  # noqa: E731
        q, k, v = (heads(dense(x, f"{p}/attention/self/{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1]) + bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = layer_norm(
            dense(context, f"{p}/attention/output/dense") + x, f"{p}/attention/output/LayerNorm"
        )
        h = gelu(dense(x, f"{p}/intermediate/dense"))
        x = layer_norm(dense(h, f"{p}/output/dense") + x, f"{p}/output/LayerNorm")
        layer += 1
    h = gelu(dense(x, "discriminator_predictions/dense"))
    return dense(h, "discriminator_predictions/dense_1")[..., 0]


def test_google_tf1_checkpoint_imports_exactly(tmp_path):
    import keras

    from electra_tf.config import ElectraConfig
    from electra_tf.convert import google, weight_map
    from electra_tf.modeling import ElectraPretrainer

    # The reference computes GELU with erf (model/modeling.py), so the import
    # must build "gelu", not the tanh approximation.
    # initializer_range 0.5: pre-activations large enough that GELU's erf and
    # tanh forms differ (by ~8e-3 in the logits; ~2e-7 at the usual 0.02).
    keras.utils.set_random_seed(1)
    config = ElectraConfig.from_preset(
        "tiny",
        vocab_size=120,
        hidden_act="gelu",
        dropout=0.0,
        generator_fraction=1.0,  # a "++"-style full-size generator
        initializer_range=0.5,
        num_heads=1,  # what the reference derives for hidden 64 (hidden // 64)
    )
    ref = ElectraPretrainer(config)
    ref.build()
    weights = weight_map.export(weight_map.pretrainer_entries(ref))
    assert "electra/encoder/layer_1/attention/self/query/kernel" in weights
    assert weights["electra/encoder/layer_0/attention/self/query/kernel"].shape == (64, 64)
    slots = {
        "electra/encoder/layer_0/output/dense/kernel/adam_m": np.zeros((256, 64), np.float32),
        "global_step": np.int64(1000),
    }
    prefix = _write_tf1_checkpoint(weights, tmp_path / "model.ckpt", slots)

    both = google.load(prefix, "both")
    assert both.config.hidden_act == "gelu"
    imported = weight_map.export(weight_map.pretrainer_entries(both))
    assert imported.keys() == weights.keys()
    for name in weights:
        np.testing.assert_array_equal(imported[name], weights[name], err_msg=name)
    x = _ours_inputs()
    np.testing.assert_allclose(both.discriminator(x), ref.discriminator(x), atol=1e-5)
    np.testing.assert_allclose(both.generator(x), ref.generator(x), atol=1e-5)
    assert both.config.generator_hidden_size == 64 and both.config.num_heads == 1
    disc = google.load(str(tmp_path), "discriminator")  # a directory works too
    np.testing.assert_allclose(disc(x), ref.discriminator(x), atol=1e-5)
    # Independently of our layers: the reference's math on the checkpoint's variables.
    # Float32 through saturated softmaxes carries ~1e-5 relative error, which
    # kernels of other CPUs can raise a few-fold; the GELU forms differ by far more.
    reference = _tf1_discriminator_logits(weights, x, config.num_heads)
    approximate = _tf1_discriminator_logits(weights, x, config.num_heads, tanh_gelu=True)
    np.testing.assert_allclose(disc(x), reference, rtol=5e-5, atol=1e-4)
    assert np.abs(disc(x) - reference).max() * 10 < np.abs(disc(x) - approximate).max()

    broken = dict(weights)
    broken.pop("electra/encoder/layer_1/output/LayerNorm/gamma")
    prefix = _write_tf1_checkpoint(broken, tmp_path / "broken" / "model.ckpt")
    with pytest.raises(ValueError, match="electra/encoder/layer_1/output/LayerNorm/gamma"):
        google.load(prefix, "both")


def test_keras_hub_backbone_imports(tmp_path):
    import keras_hub

    kh = keras_hub.models.ElectraBackbone(
        vocab_size=120,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        embedding_dim=16,
        intermediate_dim=48,
        dropout=0.0,
        max_sequence_length=64,
    )
    from electra_tf.convert import keras_hub as convert_keras_hub

    ours = convert_keras_hub.load(kh)
    x = _ours_inputs()
    expected = kh(
        {
            "token_ids": x["input_ids"],
            "segment_ids": x["segment_ids"],
            "padding_mask": x["input_mask"],
        }
    )["sequence_output"]
    _close(ours(x), expected, MASK, tol=1e-5)


@pytest.mark.slow  # three CLI processes, each loading TensorFlow
def test_cli_round_trip_hf_to_ours_to_hf(tmp_path):
    torch.manual_seed(3)
    hf = transformers.ElectraForPreTraining(_hf_config()).eval()
    hf.save_pretrained(tmp_path / "hf", safe_serialization=True)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (tmp_path / "hf" / "vocab.txt").write_text("\n".join(special + [f"w{i}" for i in range(115)]))

    def cli(*args):
        return run_cli("electra_tf.convert", *args, timeout=300)

    r = cli("--from=hf", f"--input={tmp_path / 'hf'}", f"--output={tmp_path / 'ours'}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "discriminator: loaded all" in r.stdout
    # The checkpoint's vocab comes along, where fine-tuning and fill-mask look for it.
    copied = tmp_path / "ours" / "vocab.txt"
    assert copied.read_text() == (tmp_path / "hf" / "vocab.txt").read_text()
    recorded = json.loads((tmp_path / "ours" / "discriminator" / "vocab.json").read_text())
    assert recorded["file"] == str(copied) and recorded["size"] == 120
    r = cli(
        "--to=hf",
        f"--input={tmp_path / 'ours'}",
        f"--output={tmp_path / 'back'}",
        "--tower=discriminator",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    back = transformers.ElectraForPreTraining.from_pretrained(
        tmp_path / "back" / "discriminator"
    ).eval()
    _close(_hf_run(back).logits.numpy(), _hf_run(hf).logits.numpy(), MASK, tol=1e-5)
    r = cli("--from=hf", f"--input={tmp_path / 'nothing'}", f"--output={tmp_path / 'x'}")
    assert r.returncode == 2 and "no config.json" in r.stderr


def test_fine_tuned_classifier_exports_to_hf_with_parity(tmp_path):
    from electra_tf.config import ElectraConfig
    from electra_tf.modeling.task_model import ElectraTaskModel
    from electra_tf.tasks import get_task

    config = ElectraConfig.from_preset(
        "tiny", vocab_size=120, max_position_embeddings=64, hidden_act="gelu"
    )
    ours = ElectraTaskModel(config, get_task("classification"), num_labels=3, head="hf")
    ours.build()
    assert huggingface.save(ours, str(tmp_path)) == "ElectraForSequenceClassification"
    hf = transformers.ElectraForSequenceClassification.from_pretrained(tmp_path).eval()
    x = _ours_inputs()
    x.pop("masked_lm_positions")
    _close(_hf_run(hf).logits.numpy(), ours(x)["logits"].numpy(), tol=1e-5)


def test_keras_hub_preset_export_loads_in_keras_hub(tmp_path):
    import keras_hub

    from electra_tf.config import ElectraConfig
    from electra_tf.convert import keras_hub as convert_keras_hub
    from electra_tf.modeling import ElectraDiscriminator
    from electra_tf.tokenizer import WordPieceTokenizer

    words = ["the", "cat", "sat", "on", "mat", "##s", "a", "dog", "ran", "."]
    vocab = tmp_path / "vocab.txt"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    vocab.write_text("\n".join(tokens + [f"w{i}" for i in range(120 - len(tokens))]) + "\n")
    config = ElectraConfig.from_preset(
        "tiny", vocab_size=120, max_position_embeddings=64, hidden_act="gelu_approximate"
    )
    ours = ElectraDiscriminator(config)
    ours.build()
    report = convert_keras_hub.save(ours, str(tmp_path / "preset"), str(vocab))
    assert report["max_abs_difference"] < 1e-4

    backbone = keras_hub.models.ElectraBackbone.from_preset(str(tmp_path / "preset"))
    x = _ours_inputs()
    theirs = backbone(
        {"token_ids": x["input_ids"], "segment_ids": x["segment_ids"], "padding_mask": MASK}
    )["sequence_output"]
    _close(ours.backbone(x), theirs, MASK, tol=1e-4)
    tokenizer = keras_hub.models.ElectraTokenizer.from_preset(str(tmp_path / "preset"))
    text = "The cats sat on a mat."
    assert np.asarray(tokenizer(text)).tolist() == WordPieceTokenizer(str(vocab)).token_ids(text)
    # ... and back: the preset imports to the same encoder.
    _close(convert_keras_hub.load(str(tmp_path / "preset"))(x), ours.backbone(x), MASK, tol=1e-5)
    with pytest.raises(ValueError, match="exists"):
        convert_keras_hub.save(ours, str(tmp_path / "preset"), str(vocab))


def test_keras_hub_export_of_an_exact_gelu_model_reports_the_difference(tmp_path):
    from electra_tf.config import ElectraConfig
    from electra_tf.convert import keras_hub as convert_keras_hub
    from electra_tf.modeling import ElectraDiscriminator

    vocab = tmp_path / "vocab.txt"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab.write_text("\n".join(tokens + [f"w{i}" for i in range(115)]) + "\n")
    model = ElectraDiscriminator(
        ElectraConfig.from_preset("tiny", vocab_size=120, max_position_embeddings=64)
    )
    model.build()
    assert model.config.hidden_act == "gelu"
    report = convert_keras_hub.save(model, str(tmp_path / "p"), str(vocab))
    assert 0 < report["max_abs_difference"] < 0.05  # keras-hub's tanh GELU
