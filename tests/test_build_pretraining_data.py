"""data_prep.build_pretraining_data on real text: format, accounting, safety."""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from helpers import run_cli, run_python

from data_prep.build_pretraining_data import Settings, build
from electra_tf.pretraining import data as data_lib

PAD, CLS, SEP, MASK = 0, 101, 102, 103


def _records(directory):
    out = []
    for path in sorted(pathlib.Path(directory).glob("pretrain-*.tfrecord*")):
        if path.suffix == ".json":
            continue
        comp = "GZIP" if str(path).endswith(".gz") else ""
        out.extend(r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type=comp))
    return out


def _run_cli(*args):
    return run_cli("data_prep.build_pretraining_data", *args, timeout=300)


def test_shards_round_trip_with_tf_data(masked_data):
    info = json.loads(pathlib.Path(masked_data, "dataset_info.json").read_text())
    data = data_lib.inspect_data(f"{masked_data}/pretrain-*")
    assert (
        data.max_seq_length == 64
        and data.max_predictions_per_seq == 9 == info["max_predictions_per_seq"]
    )
    batches = list(data_lib.pretraining_dataset(data, 32, training=False))
    n = sum(b["input_ids"].shape[0] for b in batches)
    assert n == info["totals"]["examples"] == sum(s["examples"] for s in info["shards"])
    b = batches[0]
    assert b["input_ids"].dtype == tf.int32 and b["masked_lm_weights"].dtype == tf.float32
    assert b["input_ids"].shape == (32, 64) and b["masked_lm_positions"].shape == (32, 9)

    ids = np.concatenate([x["input_ids"].numpy() for x in batches])
    mask = np.concatenate([x["input_mask"].numpy() for x in batches])
    pos = np.concatenate([x["masked_lm_positions"].numpy() for x in batches])
    orig = np.concatenate([x["masked_lm_ids"].numpy() for x in batches])
    w = np.concatenate([x["masked_lm_weights"].numpy() for x in batches]) > 0
    at = np.take_along_axis(ids, pos, 1)
    # Masked positions hold [MASK] or (electra scheme) the original id.
    assert ((at == MASK) | (at == orig))[w].all()
    share = (at == MASK)[w].mean()
    assert 0.82 < share < 0.88
    # Rate: round(real * 0.15), never a special token.
    expected = np.maximum(1, np.minimum(9, np.round(mask.sum(1) * 0.15)))
    assert (w.sum(1) == expected).mean() > 0.99
    assert not np.isin(orig[w], [PAD, CLS, SEP, MASK]).any()
    assert (ids[:, 0] == CLS).all() and (ids[mask == 0] == PAD).all()


def test_token_accounting_nothing_lost(masked_data):
    info = json.loads(pathlib.Path(masked_data, "dataset_info.json").read_text())
    t = info["totals"]
    assert t["tokens_read"] > 50_000
    assert t["tokens_written"] == t["tokens_read"] and info["tokens_lost"] == 0
    ids = np.stack(
        [
            np.array(tf.train.Example.FromString(r).features.feature["input_mask"].int64_list.value)
            for r in _records(masked_data)
        ]
    )
    n_special = sum(
        3
        if 1 in tf.train.Example.FromString(r).features.feature["segment_ids"].int64_list.value
        else 2
        for r in _records(masked_data)
    )
    assert ids.sum() - n_special == t["tokens_written"]


def test_deterministic_and_independent_of_workers(moby_sample, vocab_path, tmp_path):
    common = dict(
        inputs=(moby_sample,),
        vocab=vocab_path,
        max_seq_length=64,
        num_shards=3,
        chunk_bytes=32768,
        masking="electra",
    )
    build(Settings(output_dir=str(tmp_path / "a"), **common), num_workers=1)
    build(Settings(output_dir=str(tmp_path / "b"), **common), num_workers=2)
    for name in sorted(p.name for p in (tmp_path / "a").glob("pretrain-*.tfrecord")):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    build(
        Settings(output_dir=str(tmp_path / "c"), **{**common, "inputs": (moby_sample,)}),
        num_workers=1,
    )
    # A different seed gives different bytes.
    build(Settings(output_dir=str(tmp_path / "d"), seed=7, **common))
    a = (tmp_path / "a" / "pretrain-00000-of-00003.tfrecord").read_bytes()
    assert a == (tmp_path / "c" / "pretrain-00000-of-00003.tfrecord").read_bytes()
    assert a != (tmp_path / "d" / "pretrain-00000-of-00003.tfrecord").read_bytes()


def test_resume_after_a_kill_only_builds_missing_shards(moby_sample, vocab_path, tmp_path):
    s = Settings(
        inputs=(moby_sample,),
        vocab=vocab_path,
        output_dir=str(tmp_path),
        max_seq_length=64,
        num_shards=4,
        chunk_bytes=32768,
    )
    build(s)
    reference = {p.name: p.read_bytes() for p in tmp_path.glob("pretrain-*.tfrecord")}
    # Simulate a kill: shard 2 never finished (no sidecar, a stray temp file),
    # shard 3 was renamed but its sidecar was not.
    (tmp_path / "pretrain-00002-of-00004.tfrecord").unlink()
    (tmp_path / "pretrain-00002-of-00004.tfrecord.json").unlink()
    (tmp_path / ".pretrain-00002-of-00004.tfrecord.tmp-999").write_bytes(b"partial")
    (tmp_path / "pretrain-00003-of-00004.tfrecord.json").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("pretrain-0000[01]*")}
    info = build(s)
    assert info["last_run"]["shards_built"] == 2
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("pretrain-0000[01]*")} == before
    assert {p.name: p.read_bytes() for p in tmp_path.glob("pretrain-*.tfrecord")} == reference
    assert not list(tmp_path.glob(".*tmp*"))
    assert build(s)["last_run"]["shards_built"] == 0


def test_other_settings_are_refused_without_overwrite(moby_sample, vocab_path, tmp_path):
    s = Settings(
        inputs=(moby_sample,),
        vocab=vocab_path,
        output_dir=str(tmp_path),
        max_seq_length=64,
        num_shards=2,
    )
    build(s)
    other = Settings(**{**s.__dict__, "max_seq_length": 128})
    with pytest.raises(ValueError, match="different settings.*max_seq_length"):
        build(other)
    info = build(other, overwrite=True)
    assert info["max_seq_length"] == 128 and info["last_run"]["shards_built"] == 2


def test_unmasked_gzip_bert_whole_word_variants(moby_sample, vocab_path, tmp_path):
    s = Settings(
        inputs=(moby_sample,),
        vocab=vocab_path,
        output_dir=str(tmp_path / "n"),
        max_seq_length=64,
        num_shards=1,
        masking="none",
        compression="gzip",
    )
    info = build(s)
    assert info["features"] == ["input_ids", "input_mask", "segment_ids"]
    assert (tmp_path / "n" / "pretrain-00000-of-00001.tfrecord.gz").exists()
    assert data_lib.inspect_data(str(tmp_path / "n" / "*.gz")).max_predictions_per_seq is None
    s2 = Settings(
        inputs=(moby_sample,),
        vocab=vocab_path,
        output_dir=str(tmp_path / "b"),
        max_seq_length=64,
        num_shards=1,
        masking="bert",
        whole_word_masking=True,
        dupe_factor=2,
    )
    info2 = build(s2)
    assert info2["totals"]["tokens_written"] == 2 * info2["totals"]["tokens_read"]
    assert info2["masking"] == {"scheme": "bert", "rate": 0.15, "whole_word": True}


def test_empty_and_invalid_utf8_files(vocab_path, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "bad.txt").write_bytes(b"Call me Ishmael. \xff\xfe Some years ago.\n" * 50)
    s = Settings(
        inputs=(str(tmp_path / "empty.txt"), str(tmp_path / "bad.txt")),
        vocab=vocab_path,
        output_dir=str(tmp_path / "out"),
        max_seq_length=32,
        num_shards=1,
    )
    info = build(s)
    assert info["totals"]["invalid_utf8_replaced"] == 100
    assert info["totals"]["examples"] > 0


def test_cli_bad_inputs_get_clear_errors(moby_sample, vocab_path, tmp_path):
    out = str(tmp_path / "out")
    r = _run_cli(f"--input={tmp_path}/nope*.txt", f"--vocab={vocab_path}", f"--output_dir={out}")
    assert r.returncode == 2 and "matches no file" in r.stderr
    bad_vocab = tmp_path / "vocab.txt"
    bad_vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
    r = _run_cli(f"--input={moby_sample}", f"--vocab={bad_vocab}", f"--output_dir={out}")
    assert (
        r.returncode == 2
        and "lacks special token(s) [MASK]" in r.stderr
        and str(bad_vocab) in r.stderr
    )
    r = _run_cli(
        f"--input={moby_sample}",
        f"--vocab={vocab_path}",
        f"--output_dir={out}",
        "--max_seq_length=4",
    )
    assert r.returncode == 2 and "--max_seq_length=4 is too small" in r.stderr
    corrupt = tmp_path / "corrupt.txt.gz"
    corrupt.write_bytes(b"this is not gzip data at all")
    r = _run_cli(f"--input={corrupt}", f"--vocab={vocab_path}", f"--output_dir={out}")
    assert r.returncode == 2 and str(corrupt) in r.stderr
    r = _run_cli(
        f"--input={moby_sample}", f"--vocab={vocab_path}", f"--output_dir={out}", "--bogus_flag=1"
    )
    assert r.returncode != 0 and "bogus_flag" in r.stderr
    assert not pathlib.Path(out, "dataset_info.json").exists()


def test_unmasked_shards_are_made_without_tensorflow(moby_sample, vocab_path, tmp_path):
    # Importing TensorFlow would cost each process ~6 s, more than the work on
    # a small corpus; the default (dynamic masking) data does not need it.
    code = f"""
import sys
from data_prep.build_pretraining_data import Settings, build
build(Settings(inputs=({str(moby_sample)!r},), vocab={str(vocab_path)!r},
               output_dir={str(tmp_path / "u")!r}, num_shards=2, compression="gzip"))
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tensorflow_text")))
"""
    r = run_python("-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    # ...and TensorFlow reads them back: the same examples as the uncompressed
    # shards this process builds.
    settings = dict(inputs=(moby_sample,), vocab=vocab_path, num_shards=2)
    build(Settings(output_dir=str(tmp_path / "p"), **settings))
    assert _records(tmp_path / "u") == _records(tmp_path / "p")


def test_cli_end_to_end_summary(moby_sample, vocab_path, tmp_path):
    r = _run_cli(
        f"--input={moby_sample}",
        f"--vocab={vocab_path}",
        f"--output_dir={tmp_path}",
        "--num_shards=2",
        "--num_workers=2",
        "--max_seq_length=128",
    )
    assert r.returncode == 0, r.stderr
    assert "tokens written" in r.stdout and "lost 0" in r.stdout and "words/s" in r.stdout
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["special_token_ids"] == {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}
    assert info["vocab_size"] == 30522 and len(info["vocab_sha256"]) == 64
    assert "--num_workers=2" in info["command_line"]


def test_unreadable_input_is_named(tmp_path, monkeypatch):
    from data_prep import text_source

    locked = tmp_path / "locked.txt"
    locked.write_text("text")
    # Permission bits do not stop root (CI runs as root): make access() say no.
    monkeypatch.setattr(text_source.os, "access", lambda path, mode: False)
    with pytest.raises(text_source.InputError, match=f"file {locked} is not readable"):
        text_source.expand_globs(str(locked))


def test_packing_across_documents_removes_the_padding_of_short_documents(vocab_path, tmp_path):
    # Many short documents (a blank line ends each), as in the built-in corpus.
    rng = np.random.default_rng(0)
    words = ["the", "model", "reads", "text", "and", "learns", "which", "tokens", "were", "swapped"]
    documents = [" ".join(rng.choice(words, size=rng.integers(5, 40))) + "." for _ in range(2000)]
    corpus = tmp_path / "short_docs.txt"
    corpus.write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    common = dict(inputs=(str(corpus),), vocab=vocab_path, max_seq_length=128, num_shards=2)
    plain = build(Settings(output_dir=str(tmp_path / "plain"), **common))["totals"]
    packed_info = build(
        Settings(output_dir=str(tmp_path / "packed"), pack_documents=True, **common)
    )
    packed = packed_info["totals"]

    def padding_share(t):
        return t["padding"] / (t["examples"] * 128)

    assert padding_share(plain) > 0.5
    assert padding_share(packed) < 0.1
    assert packed["tokens_written"] == packed["tokens_read"] == plain["tokens_read"]
    assert packed_info["tokens_lost"] == 0 and packed_info["pack_documents"]
    assert packed["document_separators"] == 1999
    separators = sum(
        int((np.asarray(ids)[1:] == SEP).sum()) for ids in _ids(tmp_path / "packed")
    )  # two per sequence at most are structural, the rest mark document boundaries
    assert separators >= packed["document_separators"]


def _ids(directory):
    spec = {"input_ids": tf.io.FixedLenFeature([128], tf.int64)}
    for raw in _records(directory):
        yield tf.io.parse_single_example(raw, spec)["input_ids"].numpy()


def test_a_worker_processs_error_reaches_the_parent_whole(monkeypatch):
    import multiprocessing as mp
    import queue

    from data_prep import build_pretraining_data as job

    def broken(*args, **kwargs):
        raise ValueError("--input=notes.txt: cannot be read")

    monkeypatch.setattr(job, "_Worker", broken)
    results = queue.Queue()
    with pytest.raises(ValueError):
        job._child(None, [], None, mp.Value("i", 0), [0], results)
    shard, (error, trace) = results.get_nowait()
    # The parent re-raises a ValueError as is, so the CLI prints its message
    # (naming the file) and exits 2, as when this process hits it.
    assert shard is None and isinstance(error, ValueError)
    assert "notes.txt" in str(error) and "Traceback" in trace


def test_a_worker_process_writes_the_shards_it_claims(moby_sample, vocab_path, tmp_path):
    """What a spawned worker runs, in this process: it claims shards from the
    shared counter and writes the same bytes as a single-process build."""
    import multiprocessing as mp
    import queue

    from data_prep import build_pretraining_data as job
    from data_prep import text_source

    common = dict(
        inputs=(moby_sample,), vocab=vocab_path, max_seq_length=64, num_shards=2, chunk_bytes=65536
    )
    build(Settings(output_dir=str(tmp_path / "single"), **common), num_workers=1)
    settings = Settings(output_dir=str(tmp_path / "worker"), **common)
    job.prepare_output_dir(settings, settings.fingerprint(job.Vocab.load(vocab_path)), False)
    chunks = text_source.plan_chunks([moby_sample], settings.chunk_bytes)
    counter, results, updates = mp.Value("i", 0), queue.Queue(), queue.Queue()
    job._child(settings, chunks, updates, counter, [1, 0], results)
    assert [results.get_nowait()[0] for _ in range(2)] == [1, 0] and counter.value == 2
    assert not updates.empty()  # per-chunk progress for the parent's status line
    for shard in (0, 1):
        name = settings.shard_name(shard)
        assert (tmp_path / "worker" / name).read_bytes() == (
            tmp_path / "single" / name
        ).read_bytes()


def test_a_remote_vocab_is_read_into_memory(vocab_path, monkeypatch):
    from data_prep import storage

    data = pathlib.Path(vocab_path).read_bytes()
    objects = {"gs://bucket/vocab.txt": data}

    def read_bytes(path):
        if path not in objects:
            raise OSError(f"no object {path}")
        return objects[path]

    monkeypatch.setattr(storage, "read_bytes", read_bytes)
    monkeypatch.setattr(storage.tempfile, "mkstemp", None)  # no temporary copy
    vocab = storage.load_vocab("gs://bucket/vocab.txt")
    assert vocab.size == 30522 and vocab.path == "gs://bucket/vocab.txt"
    assert vocab.sha256 == storage.load_vocab(vocab_path).sha256
    with pytest.raises(ValueError, match="Cannot read vocab file gs://bucket/missing.txt"):
        storage.load_vocab("gs://bucket/missing.txt")


def test_a_small_corpus_gets_fewer_shards_and_none_empty(moby_sample, vocab_path, tmp_path):
    out = tmp_path / "out"
    r = _run_cli(
        f"--input={moby_sample}", f"--vocab={vocab_path}", f"--output_dir={out}",
        "--num_shards=64", "--num_workers=2",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "writing 2 shard(s) instead of --num_shards=64, so that none is empty" in r.stderr
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["num_shards"] == 2 and all(s["examples"] > 0 for s in info["shards"])
    assert sorted(p.name for p in out.glob("*.tfrecord")) == [
        "pretrain-00000-of-00002.tfrecord", "pretrain-00001-of-00002.tfrecord"
    ]  # fmt: skip
    assert "in 2 shard(s)" in r.stdout


def test_an_empty_corpus_is_refused(vocab_path, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    r = _run_cli(f"--input={empty}", f"--vocab={vocab_path}", f"--output_dir={tmp_path / 'a'}")
    assert r.returncode == 2 and "hold(s) no text" in r.stderr and str(empty) in r.stderr
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n\t\n" * 100)
    r = _run_cli(f"--input={blank}", f"--vocab={vocab_path}", f"--output_dir={tmp_path / 'b'}")
    assert r.returncode == 2 and "hold(s) no words" in r.stderr
    assert not (tmp_path / "b" / "dataset_info.json").exists()
