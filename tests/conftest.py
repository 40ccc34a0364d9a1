"""Shared fixtures: the ../shared/data folder and small real datasets."""

from __future__ import annotations

import gzip
import io
import os
import pathlib

import pytest
from helpers import REPO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _find_shared_data() -> pathlib.Path | None:
    for candidate in (
        os.environ.get("ELECTRA_SHARED_DATA"),
        REPO.parent / "shared" / "data",
        REPO / ".." / "shared" / "data",
    ):
        if candidate and pathlib.Path(candidate, "vocab", "uncased_vocab.txt").exists():
            return pathlib.Path(candidate).resolve()
    return None


def pytest_collection_modifyitems(config, items):
    """Tests on the real data are the integration tier (`make test-fast` leaves them out)."""
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """../shared/data, or skip with a clear message when it is absent."""
    path = _find_shared_data()
    if path is None:
        pytest.skip(
            "../shared/data not found (set ELECTRA_SHARED_DATA to the folder holding "
            "corpus/, vocab/, sst2_like/ ...)"
        )
    return path


@pytest.fixture(scope="session")
def vocab_path(shared_data) -> str:
    return str(shared_data / "vocab" / "uncased_vocab.txt")


@pytest.fixture(scope="session")
def moby_sample(shared_data, tmp_path_factory) -> str:
    """The first ~300 KB of Moby Dick (one paragraph per line), as a .txt file."""
    out = tmp_path_factory.mktemp("corpus") / "moby.txt"
    with gzip.open(shared_data / "corpus" / "mobydick.txt.gz", "rt", encoding="utf-8") as f:
        text = f.read(300_000)
    out.write_text(text[: text.rfind("\n") + 1], encoding="utf-8")
    return str(out)


@pytest.fixture(scope="session")
def masked_data(moby_sample, vocab_path, tmp_path_factory) -> str:
    """Statically masked (electra scheme) shards of `moby_sample`, length 64."""
    from data_prep.build_pretraining_data import Settings, build

    out = tmp_path_factory.mktemp("masked")
    build(
        Settings(
            inputs=(moby_sample,),
            vocab=vocab_path,
            output_dir=str(out),
            max_seq_length=64,
            num_shards=2,
            masking="electra",
            chunk_bytes=65536,
        )
    )
    return str(out)


@pytest.fixture(scope="session")
def unmasked_data(moby_sample, vocab_path, tmp_path_factory) -> str:
    """Unmasked shards of `moby_sample` (dynamic masking at train time), length 64."""
    from data_prep.build_pretraining_data import Settings, build

    out = tmp_path_factory.mktemp("unmasked")
    build(
        Settings(
            inputs=(moby_sample,),
            vocab=vocab_path,
            output_dir=str(out),
            max_seq_length=64,
            num_shards=2,
            masking="none",
            chunk_bytes=65536,
        )
    )
    return str(out)


@pytest.fixture(scope="session")
def sst2_data(shared_data, vocab_path, tmp_path_factory) -> str:
    """The SST-2-like set as fine-tuning records, length 64."""
    from data_prep.build_finetuning_data import Settings, build

    out = tmp_path_factory.mktemp("sst2")
    build(
        Settings("sst-2", str(shared_data / "sst2_like"), str(out), vocab_path, max_seq_length=64),
        stream=io.StringIO(),
    )
    return str(out)


@pytest.fixture(scope="session")
def sst2_classifier(sst2_data, tmp_path_factory) -> str:
    """A `tiny` sentiment classifier fine-tuned from random init (~75% dev accuracy);
    returns its `final/` directory (what export reads)."""
    from electra_tf.config import ElectraConfig
    from electra_tf.finetuning.job import FinetuneOptions, run_finetuning

    model_dir = tmp_path_factory.mktemp("sst2_model")
    run_finetuning(
        FinetuneOptions(
            data_dir=sst2_data,
            model_dir=str(model_dir),
            config=ElectraConfig.from_preset("tiny", vocab_size=30522, max_position_embeddings=64),
            learning_rate=1e-3,
            adam_bias_correction=True,
            num_train_epochs=2,
            log_every_steps=1000,
            seed=1,
        ),
        stream=io.StringIO(),
    )
    return str(model_dir / "final")


# --- a small GLUE directory in GLUE's own layout ----------------------------------

_WORDS = [
    "the",
    "a",
    "film",
    "movie",
    "story",
    "plot",
    "actor",
    "great",
    "good",
    "bad",
    "awful",
    "fine",
    "dull",
    "bright",
    "cat",
    "dog",
    "man",
    "woman",
    "runs",
    "sits",
    "sees",
    "likes",
    "eats",
    "is",
    "was",
    "not",
    "very",
    "quite",
    "rather",
    "house",
    "car",
    "tree",
    "river",
    "city",
    "old",
    "new",
    "small",
    "big",
    "red",
    "blue",
]


def _sentence(rng, n=6):
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def write_glue_fixture(root: pathlib.Path, rows: int = 24) -> dict[str, pathlib.Path]:
    """CoLA, SST-2, MRPC, STS-B, RTE and MNLI with `rows` train and rows // 3 dev
    examples each, in GLUE's file formats (headers, column positions, MNLI's
    matched/mismatched dev files). Synthetic text from a 40-word vocabulary."""
    import random

    rng = random.Random(0)
    formats = {
        "CoLA": (None, lambda i, a, b, y: f"src{i}\t{y}\t*\t{a}"),
        "SST-2": ("sentence\tlabel", lambda i, a, b, y: f"{a}\t{y}"),
        "MRPC": (
            "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
            lambda i, a, b, y: f"{y}\t{i}\t{i + 1000}\t{a}\t{b}",
        ),
        "STS-B": (
            "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
            lambda i, a, b, y: (
                f"{i}\tmain\tf\t2012\t{i}\tnone\tnone\t{a}\t{b}\t{4.0 * y + 0.5:.3f}"
            ),
        ),
        "RTE": (
            "index\tsentence1\tsentence2\tlabel",
            lambda i, a, b, y: f"{i}\t{a}\t{b}\t{['not_entailment', 'entailment'][y]}",
        ),
        "MNLI": (
            "\t".join(["index", "promptID", "pairID", "genre", "s1bp", "s2bp", "s1p", "s2p"])
            + "\tsentence1\tsentence2\tlabel1\tgold_label",
            lambda i, a, b, y: (
                "\t".join([str(i), "p", "q", "g", "x", "x", "x", "x", a, b])
                + f"\t-\t{['contradiction', 'entailment', 'neutral'][y % 3]}"
            ),
        ),
    }
    dirs = {}
    for name, (header, row) in formats.items():
        directory = root / name
        directory.mkdir(parents=True)
        splits = {"train.tsv": rows, "dev.tsv": rows // 3}
        if name == "MNLI":
            splits = {
                "train.tsv": rows,
                "dev_matched.tsv": rows // 3,
                "dev_mismatched.tsv": rows // 3,
            }
        for file, n in splits.items():
            lines = [header] if header else []
            for i in range(n):
                label = i % 2 if name != "MNLI" else i % 3
                lines.append(row(i, _sentence(rng), _sentence(rng), label))
            (directory / file).write_text("\n".join(lines) + "\n", encoding="utf-8")
        dirs[name] = directory
    return dirs


def write_fixture_vocab(path: pathlib.Path) -> str:
    """A WordPiece vocab covering the GLUE fixture's words (specials first)."""
    from electra_tf.vocab import SPECIAL_TOKENS

    tokens = list(SPECIAL_TOKENS) + sorted(set(_WORDS)) + [str(d) for d in range(10)] + [".", "-"]
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def glue_dir(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("glue")
    write_glue_fixture(root)
    return root


@pytest.fixture(scope="session")
def glue_vocab(tmp_path_factory) -> str:
    return write_fixture_vocab(tmp_path_factory.mktemp("glue_vocab") / "vocab.txt")
