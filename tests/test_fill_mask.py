"""Fill-mask with the generator: a model pre-trained briefly on the built-in
corpus predicts held-out words far above chance, through the Python path, the
command line and the exported `fill_mask` signature alike."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
import tensorflow as tf
from helpers import run_cli, tiny_pretrain_options

from data_prep.build_pretraining_data import Settings, build
from data_prep.build_vocab import count_words, learn_vocab
from electra_tf.config import ElectraConfig
from electra_tf.io_utils import atomic_write_text
from electra_tf.pretraining.job import run_pretraining
from electra_tf.serving import load
from electra_tf.serving.fill_mask import FillMask
from electra_tf.serving.saved_model import export
from electra_tf.vocab import Vocab

pytestmark = pytest.mark.slow  # builds a corpus and vocab, pre-trains 300 steps


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model_dir, held-out documents): `tiny` pre-trained 300 steps on 90% of
    the built-in corpus with its own 8,192-token vocab, as `make demo` does."""
    root = tmp_path_factory.mktemp("fill_mask")
    corpus = root / "corpus.txt"
    r = run_cli("data_prep.builtin_corpus", f"--output={corpus}")
    assert r.returncode == 0, r.stderr[-2000:]
    documents = corpus.read_text(encoding="utf-8").split("\n\n")
    random.Random(0).shuffle(documents)
    cut = len(documents) * 9 // 10
    train, held_out = documents[:cut], documents[cut:]
    (root / "train.txt").write_text("\n\n".join(train) + "\n", encoding="utf-8")
    vocab = learn_vocab(count_words([str(root / "train.txt")], lower_case=True), 8192)
    atomic_write_text(str(root / "vocab.txt"), "\n".join(vocab) + "\n")
    build(
        Settings(
            inputs=(str(root / "train.txt"),),
            vocab=str(root / "vocab.txt"),
            output_dir=str(root / "data"),
            max_seq_length=128,
            num_shards=4,
            pack_documents=True,
        )
    )
    model_dir = root / "model"
    config = ElectraConfig.from_preset("tiny", vocab_size=8192, generator_fraction=0.25)
    with open(root / "log.txt", "w") as log:
        run_pretraining(
            tiny_pretrain_options(
                root / "data",
                model_dir,
                config=config,
                max_seq_length=128,
                train_batch_size=32,
                num_train_steps=300,
                warmup_steps=30,
                log_every_steps=100,
                save_checkpoints_steps=300,
                disc_weight=100.0,
            ),
            stream=log,
        )
    return model_dir, root / "vocab.txt", held_out


def _cloze(held_out, vocab: Vocab, count=200):
    """(text with one [MASK], the masked word's id) from held-out sentences: a
    whole word of the vocab in the middle of a line of at least 6 words."""
    out = []
    for document in held_out:
        for line in document.splitlines():
            words = line.split()
            if len(words) < 6:
                continue
            middle = len(words) // 2
            word = words[middle].lower()
            if re.fullmatch(r"[a-z]+", word) and word in vocab.index:
                text = " ".join(words[:middle] + ["[MASK]"] + words[middle + 1 :])
                out.append((text, vocab.index[word]))
            if len(out) == count:
                return out
    return out


def test_true_word_in_the_top_10_far_more_often_than_chance(trained):
    model_dir, vocab_path, held_out = trained
    vocab = Vocab.load(str(vocab_path))
    cloze = _cloze(held_out, vocab)
    assert len(cloze) == 200
    fill = FillMask.from_model_dir(str(model_dir), str(vocab_path))
    predictions = fill([text for text, _ in cloze], top_k=10)
    hits = np.mean(
        [truth in [p.token_id for p in preds[0]] for (_, truth), preds in zip(cloze, predictions)]
    )
    # Chance: 10 of the ~8,000 word-start pieces on offer, 0.13%. Measured:
    # 0.175 of 200 held-out words after 300 steps (130 times chance).
    assert hits > 0.1, hits
    top = predictions[0][0]
    assert [p.probability for p in top] == sorted((p.probability for p in top), reverse=True)
    assert not any(p.token.startswith(("##", "[")) for preds in predictions for p in preds[0])


def test_glued_masks_get_continuations_and_the_cli_prints_them(trained):
    model_dir, vocab_path, _ = trained
    r = run_cli(
        "electra_tf.fill_mask", f"--model_dir={model_dir}", f"--vocab={vocab_path}",
        "--top_k=3", "--json", "Return the [MASK] of the list.", "The func[MASK] returns None.",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    start, glued = (json.loads(line) for line in r.stdout.splitlines())
    assert len(start["masks"]) == 1 and len(start["masks"][0]) == 3
    assert all(not p["token"].startswith("##") for p in start["masks"][0])
    assert glued["masks"][0] and all(p["token"].startswith("##") for p in glued["masks"][0])
    assert all(p["word"] == "func" + p["token"][2:] for p in glued["masks"][0])
    bad = run_cli("electra_tf.fill_mask", f"--model_dir={model_dir}", f"--vocab={vocab_path}")
    assert bad.returncode == 2 and "[MASK]" in bad.stderr


def test_the_exported_signature_equals_the_python_path(trained, tmp_path):
    model_dir, vocab_path, held_out = trained
    texts = [
        "Return the [MASK] of the list.",
        "The func[MASK] returns None, or [MASK] an error.",
        "no mask at all",
    ]
    path = export(str(model_dir), str(tmp_path / "serve"), vocab=str(vocab_path))
    out = load(path).signatures["fill_mask"](text=tf.constant(texts))
    assert out["mask_count"].numpy().tolist() == [1, 2, 0]
    fill = FillMask.from_model_dir(str(model_dir), str(vocab_path))
    for row, masks in enumerate(fill(texts[:2], top_k=10)):
        for m, predictions in enumerate(masks):
            ids = [p.token_id for p in predictions]
            assert out["token_ids"].numpy()[row, m, : len(ids)].tolist() == ids
            np.testing.assert_allclose(
                out["probabilities"].numpy()[row, m, : len(ids)],
                [p.probability for p in predictions],
                atol=1e-5,
            )
            assert [t.decode() for t in out["tokens"].numpy()[row, m, : len(ids)]] == [
                p.token for p in predictions
            ]
