from helpers import run_cli

from data_prep.build_vocab import count_words, learn_vocab, reserved_tokens, summary
from electra_tf.vocab import Vocab


def test_learned_vocab_has_exact_size_and_bert_layout(moby_sample, tmp_path):
    counts = count_words([moby_sample], lower_case=True)
    assert counts["whale"] > 50 and "Whale" not in counts
    vocab = learn_vocab(counts, 2000)
    assert len(vocab) == 2000 and len(set(vocab)) == 2000
    assert vocab[:1] == ["[PAD]"] and vocab[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert "whale" in vocab and any(t.startswith("##") for t in vocab)


def test_small_vocab_puts_specials_first(moby_sample):
    assert reserved_tokens(500) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = learn_vocab(count_words([moby_sample], True), 500)
    assert vocab[:5] == reserved_tokens(500) and len(vocab) == 500


def test_cli_writes_a_loadable_vocab(moby_sample, tmp_path):
    out = tmp_path / "v" / "vocab.txt"
    r = run_cli(
        "data_prep.build_vocab",
        f"--input={moby_sample}",
        "--vocab_size=1500",
        f"--output={out}",
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "learned from the corpus, 104 reserved" in r.stdout
    vocab = Vocab.load(str(out))
    assert vocab.size == 1500 and vocab.mask_id == 103


def test_the_summary_counts_learned_tokens_and_fillers():
    counts = {f"word{i}": 5 for i in range(40)}
    vocab = learn_vocab(counts, vocab_size=2000, min_count=2)
    text = summary(vocab)
    fillers = sum(1 for t in vocab[104:] if t.startswith("[unused"))
    learned = 2000 - 104 - fillers
    assert fillers > 1000  # 40 words give far fewer pieces than 2,000 lines
    assert text.startswith(
        f"{learned:,} learned from the corpus, 104 reserved, {fillers:,} fillers"
    )
    assert f"a --vocab_size near {learned + 104:,} would do" in text
