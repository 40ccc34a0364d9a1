"""Data prep on Apache Beam (DirectRunner, 2 processes) against the local jobs."""

from __future__ import annotations

import gzip
import json
import random

import pytest
from helpers import run_cli

from data_prep import build_pretraining_data as local
from data_prep import build_vocab
from data_prep.beam import pretraining_data as beam_data
from data_prep.beam import vocab as beam_vocab
from data_prep.text_source import InputError

TWO_PROCESSES = [
    "--runner=DirectRunner",
    "--direct_num_workers=2",
    "--direct_running_mode=multi_processing",
]


@pytest.fixture(scope="module")
def corpus(moby_sample, shared_data, tmp_path_factory) -> list[str]:
    """Moby Dick's opening, a gzip of State of the Union speeches with invalid
    UTF-8 in it, and one 10 MB line."""
    folder = tmp_path_factory.mktemp("beam_corpus")
    with gzip.open(shared_data / "corpus" / "sotu.txt.gz", "rb") as f:
        speeches = f.read(400_000)
    with gzip.open(folder / "sotu.txt.gz", "wb") as f:
        f.write(speeches[:200_000] + b"\nbroken \xff\xfe bytes \xc3 here\n" + speeches[200_000:])
    rng = random.Random(0)
    words = [w for w in speeches.decode("utf-8", "ignore").split() if w.isalpha()][:5000]
    line = " ".join(rng.choice(words) for _ in range(1_800_000))[: 10 << 20]
    (folder / "long_line.txt").write_text(line + "\n", encoding="utf-8")
    return [moby_sample, str(folder / "sotu.txt.gz"), str(folder / "long_line.txt")]


def _settings(corpus, vocab_path, out, **overrides):
    values = dict(
        inputs=tuple(corpus),
        vocab=vocab_path,
        output_dir=str(out),
        max_seq_length=64,
        num_shards=5,
        masking="electra",
        chunk_bytes=1 << 20,
    )
    values.update(overrides)
    return local.Settings(**values)


@pytest.mark.slow
def test_beam_shards_are_the_local_shards_byte_for_byte(corpus, vocab_path, tmp_path):
    local_info = local.build(_settings(corpus, vocab_path, tmp_path / "local"), num_workers=2)
    beam_info = beam_data.build(_settings(corpus, vocab_path, tmp_path / "beam"), TWO_PROCESSES)
    for shard in local_info["shards"]:
        a = (tmp_path / "local" / shard["file"]).read_bytes()
        b = (tmp_path / "beam" / shard["file"]).read_bytes()
        assert a == b, shard["file"]
    assert beam_info["shards"] == local_info["shards"]
    assert beam_info["totals"] == local_info["totals"]
    assert beam_info["totals"]["invalid_utf8_replaced"] == 3
    assert beam_info["tokens_lost"] == 0
    # The same accounting, counted by Beam while the job ran.
    counted = beam_info["last_run"]["beam_counters"]
    for key in local.STAT_KEYS:
        assert counted[key] == local_info["totals"][key], key
    saved = json.loads((tmp_path / "beam" / "dataset_info.json").read_text())
    assert saved["totals"] == local_info["totals"]

    # A rerun keeps finished shards and rebuilds a missing one, identically.
    missing = tmp_path / "beam" / local_info["shards"][2]["file"]
    missing.unlink()
    again = beam_data.build(_settings(corpus, vocab_path, tmp_path / "beam"), TWO_PROCESSES)
    assert again["last_run"]["shards_built"] == 1
    assert missing.read_bytes() == (tmp_path / "local" / missing.name).read_bytes()


@pytest.mark.slow
def test_beam_vocab_is_the_local_vocab(moby_sample, tmp_path):
    expected = build_vocab.learn_vocab(build_vocab.count_words([moby_sample], True), 1200)
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    out = tmp_path / "vocab.txt"
    with beam.Pipeline(options=PipelineOptions(TWO_PROCESSES)) as pipeline:
        beam_vocab.build_pipeline(pipeline, [moby_sample], str(out), 1200, True, 2, 1000)
    learned = out.read_text(encoding="utf-8").splitlines()
    assert learned == expected
    assert learned[:1] == ["[PAD]"] and learned[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _cli(module, *args):
    return run_cli(module, *args)


def test_bad_inputs_fail_on_beam_as_they_do_locally(vocab_path, tmp_path):
    common = [f"--input={tmp_path}/nothing-*.txt", f"--vocab={vocab_path}"]
    local_run = _cli("data_prep.build_pretraining_data", *common, f"--output_dir={tmp_path}/a")
    beam_run = _cli(
        "data_prep.beam.pretraining_data", *common, f"--output_dir={tmp_path}/b", *TWO_PROCESSES
    )
    assert local_run.returncode == beam_run.returncode == 2
    assert "matches no file" in beam_run.stderr
    assert local_run.stderr.strip().splitlines()[-1] == beam_run.stderr.strip().splitlines()[-1]
    # A mistyped flag: Beam alone would drop it with a warning and build with the default.
    typo = _cli(
        "data_prep.beam.pretraining_data", *common, f"--output_dir={tmp_path}/c",
        "--num_shard=3", *TWO_PROCESSES,
    )  # fmt: skip
    assert typo.returncode == 2 and "unknown flag(s) --num_shard" in typo.stderr

    corrupt = tmp_path / "corrupt.txt.gz"
    corrupt.write_bytes(gzip.compress(b"some text\n" * 1000)[:-30])  # cut mid-stream
    settings = _settings([str(corrupt)], vocab_path, tmp_path / "local", num_shards=1)
    with pytest.raises(InputError, match=rf"Cannot read input file {corrupt}") as local_error:
        local.build(settings)
    settings = _settings([str(corrupt)], vocab_path, tmp_path / "beam", num_shards=1)
    with pytest.raises(InputError, match=rf"Cannot read input file {corrupt}") as beam_error:
        beam_data.build(settings, ["--runner=DirectRunner"])
    assert str(beam_error.value) == str(local_error.value)
