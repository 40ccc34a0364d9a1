r"""Turns raw text into (masked) pre-training TFRecord shards.

    python -m data_prep.build_pretraining_data --input='corpus/*.txt.gz' \
        --vocab=vocab.txt --output_dir=data/ --max_seq_length=128 \
        --num_shards=16 --num_workers=2

Streaming and bounded in memory: the inputs are cut into ~1 MB chunks at line
or word boundaries; shard s holds the contiguous chunk range
[s*K/S, (s+1)*K/S). Each chunk is packed and masked with randomness keyed by
(seed, chunk, dupe copy), so the bytes do not depend on --num_workers.
Every shard is written to a temp file and renamed, with a small JSON sidecar
holding its counts; a rerun skips finished shards. dataset_info.json records
the settings, per-shard counts and token accounting.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import pickle
import queue
import random
import sys
import time
import traceback
import types
from typing import Any

from absl import flags

from data_prep import storage, text_source
from data_prep.packing import SequencePacker
from electra_tf import cli, records
from electra_tf.masking import SCHEMES, Masker, max_predictions_for
from electra_tf.tokenizer import WordPieceTokenizer
from electra_tf.vocab import Vocab

FLAGS = flags.FLAGS

SETTINGS_FILE = "build_settings.json"


def define_flags(local: bool = True) -> None:
    """This job's flags; `local=False` leaves out --num_workers (Beam's runners
    size themselves, and Dataflow has its own --num_workers)."""
    flags.DEFINE_string("input", None, "Comma-separated globs of .txt, .txt.gz or .bz2 files.")
    flags.DEFINE_string("vocab", None, "WordPiece vocab file (one token per line).")
    flags.DEFINE_string("output_dir", None, "Directory for shards and dataset_info.json.")
    flags.DEFINE_integer("max_seq_length", 128, "Tokens per sequence, [CLS]/[SEP] included.")
    flags.DEFINE_integer("num_shards", 16, "Number of output TFRecord files.")
    if local:
        flags.DEFINE_integer("num_workers", os.cpu_count() or 1, "Worker processes.")
    flags.DEFINE_enum(
        "masking",
        "none",
        [*SCHEMES, "none"],
        "none (the default, as the reference): unmasked records, masked afresh at every "
        "training step; electra: fixed masks, 85% [MASK] / 15% kept; bert: fixed masks, 80/10/10.",
    )
    flags.DEFINE_float("mask_rate", 0.15, "Fraction of tokens selected for prediction.")
    flags.DEFINE_integer("max_predictions_per_seq", None, "Default: int((rate+0.005)*length).")
    flags.DEFINE_boolean("whole_word_masking", False, "Mask whole words (all their ## pieces).")
    flags.DEFINE_integer("dupe_factor", 1, "Differently masked copies of each sequence.")
    flags.DEFINE_boolean(
        "pack_documents",
        False,
        "Fill sequences across document boundaries (a [SEP] between documents), so that "
        "corpora of short documents carry almost no padding (RoBERTa's full-sentences "
        "packing). Default: a document ends its last sequence, as the reference.",
    )
    flags.DEFINE_integer("seed", 12345, "Random seed (packing and masking).")
    flags.DEFINE_boolean("lower_case", True, "Lower-case and strip accents (uncased vocab).")
    flags.DEFINE_enum("compression", "none", ["none", "gzip"], "TFRecord compression.")
    flags.DEFINE_integer("chunk_bytes", text_source.DEFAULT_CHUNK_BYTES, "Work-unit size.")
    flags.DEFINE_boolean("overwrite", False, "Replace output made with other settings.")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that determines the output bytes (num_workers does not)."""

    inputs: tuple[str, ...]
    vocab: str
    output_dir: str
    max_seq_length: int = 128
    num_shards: int = 16
    masking: str = "none"
    mask_rate: float = 0.15
    max_predictions_per_seq: int | None = None
    whole_word_masking: bool = False
    dupe_factor: int = 1
    pack_documents: bool = False
    seed: int = 12345
    lower_case: bool = True
    compression: str = "none"
    chunk_bytes: int = text_source.DEFAULT_CHUNK_BYTES

    @property
    def max_predictions(self) -> int:
        if self.max_predictions_per_seq is not None:
            return self.max_predictions_per_seq
        return max_predictions_for(self.max_seq_length, self.mask_rate)

    def validate(self) -> None:
        if self.max_seq_length < 8:
            raise ValueError(
                f"--max_seq_length={self.max_seq_length} is too small: a sequence needs "
                "[CLS], [SEP] and some text; use at least 8"
            )
        if self.num_shards < 1:
            raise ValueError(f"--num_shards must be >= 1, got {self.num_shards}")
        if self.dupe_factor < 1:
            raise ValueError(f"--dupe_factor must be >= 1, got {self.dupe_factor}")
        if self.masking != "none":
            if not 0.0 < self.mask_rate < 1.0:
                raise ValueError(f"--mask_rate must be in (0, 1), got {self.mask_rate}")
            if not 1 <= self.max_predictions <= self.max_seq_length:
                raise ValueError(
                    f"--max_predictions_per_seq={self.max_predictions} must be in "
                    f"[1, max_seq_length={self.max_seq_length}]"
                )
        if self.chunk_bytes < 4096:
            raise ValueError(f"--chunk_bytes must be >= 4096, got {self.chunk_bytes}")

    def fingerprint(self, vocab: Vocab) -> dict[str, Any]:
        """What a rerun must match to reuse finished shards."""
        d = dataclasses.asdict(self)
        d.pop("output_dir")
        d["inputs"] = [{"path": _absolute(p), "bytes": storage.size(p)} for p in self.inputs]
        d["vocab"] = {"sha256": vocab.sha256, "size": vocab.size}
        d["max_predictions_per_seq"] = self.max_predictions
        if not self.pack_documents:
            del d["pack_documents"]  # data built before the option stays reusable
        return d

    def shard_name(self, shard: int) -> str:
        ext = ".tfrecord.gz" if self.compression == "gzip" else ".tfrecord"
        return f"pretrain-{shard:05d}-of-{self.num_shards:05d}{ext}"


# --- Work done in each process -------------------------------------------------


class _Worker:
    """Per-process state: tokenizer, masking function and chunk reader.

    Only static masking needs TensorFlow (the masking function is the one
    training runs); the default, unmasked shards are made without it, as
    importing it costs each process ~6 s.
    """

    def __init__(
        self,
        settings: Settings,
        chunks: list[text_source.Chunk],
        progress: Any,
        one_thread: bool = False,
    ):
        self.settings = settings
        self.chunks = chunks
        self.progress = progress
        self.vocab = storage.load_vocab(settings.vocab)
        # The same ids as tf-text's FastBertTokenizer, which serving runs in-graph.
        self.tokenizer = WordPieceTokenizer(self.vocab, lower_case=settings.lower_case)
        self.mask_fn = None
        if settings.masking != "none":
            import tensorflow as tf

            if one_thread:
                _limit_threads()
            self.tf = tf
            masker = Masker.from_vocab(
                dict(
                    scheme=settings.masking,
                    rate=settings.mask_rate,
                    max_predictions=settings.max_predictions,
                    whole_word=settings.whole_word_masking,
                ),
                self.vocab,
            )
            self.mask_fn = tf.function(masker, reduce_retracing=True, autograph=False)
        self.reader = text_source.ChunkReader()

    def chunk_records(self, chunk: text_source.Chunk) -> tuple[list[bytes], dict[str, int]]:
        """One chunk's serialised examples and counts (the unit of work, keyed by
        chunk index so that it is the same in any process)."""
        import numpy as np

        s = self.settings
        stats = new_stats()
        out: list[bytes] = []
        replaced_before = self.reader.utf8.count
        text = self.reader.read(chunk)
        stats["invalid_utf8_replaced"] = self.reader.utf8.count - replaced_before
        docs = list(text_source.documents(text))
        sentences = [sent for doc in docs for sent in doc]
        token_lists = [np.array(self.tokenizer.token_ids(s), np.int32) for s in sentences]
        doc_tokens = []
        i = 0
        for doc in docs:
            doc_tokens.append(token_lists[i : i + len(doc)])
            i += len(doc)
        tokens_read = sum(len(t) for t in token_lists)
        stats["docs"] += len(docs)
        stats["sentences"] += len(sentences)
        stats["tokens_read"] += tokens_read
        stats["chars"] += len(text)
        stats["words"] += len(text.split())

        for copy in range(s.dupe_factor):
            rng = random.Random(f"{s.seed}/{chunk.index}/{copy}")
            packer = SequencePacker(s.max_seq_length, self.vocab.cls_id, self.vocab.sep_id, rng)
            if s.pack_documents:
                seqs, separators = packer.pack_documents(doc_tokens)
                stats["document_separators"] += separators
            else:
                seqs, separators = [seq for d in doc_tokens for seq in packer.pack_document(d)], 0
            if not seqs:
                continue
            n, length = len(seqs), s.max_seq_length
            ids = np.full((n, length), self.vocab.pad_id, np.int32)
            mask = np.zeros((n, length), np.int32)
            segs = np.zeros((n, length), np.int32)
            written = 0
            for r, (seq, len_a) in enumerate(seqs):
                ids[r, : len(seq)] = seq
                mask[r, : len(seq)] = 1
                segs[r, len_a : len(seq)] = 1
                written += len(seq) - (2 if len_a == len(seq) else 3)
            batch = {"input_ids": ids, "input_mask": mask, "segment_ids": segs}
            if self.mask_fn is not None:
                seed = self.tf.constant(
                    [s.seed % (1 << 31), (chunk.index * 131 + copy) % (1 << 31)]
                )
                masked = self.mask_fn(ids, mask, seed)
                batch = {k: v.numpy() for k, v in masked.items()}
                batch["input_mask"] = mask
                batch["segment_ids"] = segs
                stats["masked_tokens"] += int(batch["masked_lm_weights"].sum())
            out.extend(records.encode_examples(batch))
            stats["examples"] += n
            stats["tokens_written"] += written - separators  # text tokens only
            stats["padding"] += int(n * length - mask.sum())
        return out, stats

    def process_shard(self, shard: int) -> dict[str, Any]:
        lo, hi = shard_range(shard, len(self.chunks), self.settings.num_shards)

        def parts():
            for chunk in self.chunks[lo:hi]:
                part = self.chunk_records(chunk)
                if self.progress is not None:
                    self.progress.put(part[1])
                yield part

        stats = write_shard(self.settings, shard, parts())
        self.reader.close()
        return stats


STAT_KEYS = (
    "docs",
    "sentences",
    "tokens_read",
    "tokens_written",
    "examples",
    "masked_tokens",
    "padding",
    "document_separators",
    "chars",
    "words",
    "invalid_utf8_replaced",
)


def new_stats() -> dict[str, int]:
    return dict.fromkeys(STAT_KEYS, 0)


def fit_shards(settings: Settings, stream=sys.stderr) -> Settings:
    """`settings` with at most as many shards as the input has chunks.

    A shard holds whole chunks of input (`chunk_bytes` each at most), so a
    corpus of K chunks cannot fill more than K shards; asking for more would
    leave empty shards. The count comes from the stored file sizes (every
    chunk but a file's last is nearly full), so it is the same on every
    runner without reading the text. An input with no bytes is an error.
    """
    sizes = {path: storage.size(path) for path in settings.inputs}
    if not any(sizes.values()):
        raise text_source.InputError(
            f"--input: {', '.join(settings.inputs)} hold(s) no text (every file is empty)"
        )
    chunks = sum(-(-size // settings.chunk_bytes) for size in sizes.values())
    if chunks >= settings.num_shards:
        return settings
    print(
        f"[data_prep] the input fills {chunks} chunk(s) of {settings.chunk_bytes >> 10} KB: "
        f"writing {chunks} shard(s) instead of --num_shards={settings.num_shards}, so that "
        "none is empty",
        file=stream,
    )
    return dataclasses.replace(settings, num_shards=chunks)


def shard_range(shard: int, num_chunks: int, num_shards: int) -> tuple[int, int]:
    """Shard s holds the chunks [s*K/S, (s+1)*K/S): contiguous, by global chunk index."""
    return shard * num_chunks // num_shards, (shard + 1) * num_chunks // num_shards


def write_shard(settings: Settings, shard: int, parts) -> dict[str, Any]:
    """Writes shard `shard` from its chunks' (records, stats), in chunk order.

    The file appears whole under its final name (temp file + rename, or a
    finished upload), then the JSON sidecar with its counts, which marks it
    finished for a rerun. Returns the sidecar's content.
    """
    name = settings.shard_name(shard)
    final = storage.join(settings.output_dir, name)
    tmp = storage.local_scratch(final)
    stats = new_stats()
    chunks = 0
    compression = "gzip" if settings.compression == "gzip" else None
    try:
        with records.TFRecordWriter(tmp, compression) as writer:
            for part_records, part_stats in parts:
                for record in part_records:
                    writer.write(record)
                for key in STAT_KEYS:
                    stats[key] += part_stats[key]
                chunks += 1
        stats.update(chunks=chunks, file=name, bytes=os.path.getsize(tmp))
        storage.publish(tmp, final)
        storage.write_bytes(final + ".json", (json.dumps(stats, indent=2) + "\n").encode())
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return stats


def _limit_threads() -> None:
    """One TensorFlow thread per process: processes, not threads, give the speed."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime already started in this process
        pass


def _claim(counter: Any, todo: list[int]) -> int | None:
    """The next unclaimed shard of `todo` (shared by every process), or None."""
    with counter.get_lock():
        i = counter.value
        if i >= len(todo):
            return None
        counter.value = i + 1
    return todo[i]


def _child(settings: Settings, chunks, progress, counter, todo, results) -> None:
    """A worker process: claims shards until none are left, putting (shard,
    stats) on `results`, or (None, (error, traceback)) if it fails."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        worker = _Worker(settings, chunks, progress, one_thread=True)
        while (shard := _claim(counter, todo)) is not None:
            results.put((shard, worker.process_shard(shard)))
    except Exception as e:
        try:
            pickle.dumps(e)
        except Exception:  # noqa: BLE001 - an exception that cannot cross processes
            e = RuntimeError(str(e))
        results.put((None, (e, traceback.format_exc())))
        raise


# --- Orchestration -----------------------------------------------------------------


def finished_shards(settings: Settings) -> dict[int, dict[str, Any]]:
    """Shards a previous run finished: file and sidecar present, sizes agreeing."""
    done = {}
    names = set(storage.listdir(settings.output_dir))
    for shard in range(settings.num_shards):
        name = settings.shard_name(shard)
        if name not in names or name + ".json" not in names:
            continue
        final = storage.join(settings.output_dir, name)
        try:
            stats = json.loads(storage.read_bytes(final + ".json"))
        except (OSError, ValueError):
            continue
        if stats.get("bytes") == storage.size(final):
            done[shard] = stats
    return done


def prepare_output_dir(settings: Settings, fingerprint: dict[str, Any], overwrite: bool) -> None:
    """Creates the output dir, or checks that its shards were made with these settings."""
    out = settings.output_dir
    storage.makedirs(out)
    path = storage.join(out, SETTINGS_FILE)
    names = storage.listdir(out)
    if SETTINGS_FILE in names:
        previous = json.loads(storage.read_bytes(path))
        if previous != fingerprint:
            changed = sorted(
                k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k)
            )
            if not overwrite:
                raise ValueError(
                    f"--output_dir {out} holds data made with different settings "
                    f"({', '.join(changed)}); pass --overwrite to replace it or choose another directory"
                )
            _remove_outputs(out)
    elif any(n.startswith("pretrain-") for n in names):
        if not overwrite:
            raise ValueError(
                f"--output_dir {out} holds shards of unknown origin; pass --overwrite to replace them"
            )
        _remove_outputs(out)
    for name in storage.listdir(out):  # Temp files of a killed run.
        if name.startswith(".pretrain-") and ".tmp-" in name:
            storage.remove(storage.join(out, name))
    storage.write_bytes(path, (json.dumps(fingerprint, indent=2, sort_keys=True) + "\n").encode())


def _remove_outputs(out: str) -> None:
    for name in storage.listdir(out):
        if name.startswith(("pretrain-", ".pretrain-")) or name == records.DATASET_INFO:
            storage.remove(storage.join(out, name))


def _absolute(path: str) -> str:
    return path if storage.is_remote(path) else os.path.abspath(path)


class _Progress:
    """One status line: docs, tokens, examples, tokens/s."""

    def __init__(self, total_bytes: int, stream=sys.stderr):
        self.start = time.time()
        self.totals: dict[str, int] = {}
        self.total_bytes = total_bytes
        self.stream = stream
        self.last = 0.0
        self.tty = stream.isatty()

    def add(self, delta: dict[str, int]) -> None:
        for k, v in delta.items():
            self.totals[k] = self.totals.get(k, 0) + v
        now = time.time()
        if now - self.last >= (0.5 if self.tty else 10.0):
            self.last = now
            self.show()

    def show(self, end: str = "") -> None:
        t = self.totals
        dt = max(time.time() - self.start, 1e-9)
        pct = 100.0 * t.get("chars", 0) / max(self.total_bytes, 1)
        line = (
            f"[data_prep] ~{min(pct, 100):5.1f}%  docs {t.get('docs', 0):,}  "
            f"tokens {t.get('tokens_read', 0):,}  examples {t.get('examples', 0):,}  "
            f"{t.get('tokens_read', 0) / dt:,.0f} tokens/s"
        )
        self.stream.write(("\r" + line + end) if self.tty else (line + "\n"))
        self.stream.flush()


def build(
    settings: Settings, num_workers: int = 1, overwrite: bool = False, command: str = ""
) -> dict[str, Any]:
    """Builds (or finishes) the dataset; returns the dataset_info dict."""
    settings.validate()
    if num_workers < 1:
        raise ValueError(f"--num_workers must be >= 1, got {num_workers}")
    settings = fit_shards(settings)
    vocab = storage.load_vocab(settings.vocab)
    fingerprint = settings.fingerprint(vocab)
    prepare_output_dir(settings, fingerprint, overwrite)

    start = time.time()
    chunks = text_source.plan_chunks(list(settings.inputs), settings.chunk_bytes)
    done = finished_shards(settings)
    todo = [s for s in range(settings.num_shards) if s not in done]
    if done:
        print(
            f"[data_prep] resuming: {len(done)} of {settings.num_shards} shards already finished",
            file=sys.stderr,
        )
    total_bytes = sum(c.length for c in chunks)
    progress = _Progress(total_bytes)
    results = dict(done)
    workers = max(1, min(num_workers, len(todo)))
    results.update(_process_shards(settings, chunks, todo, workers, progress))
    progress.show(end="\n")
    elapsed = time.time() - start
    check_not_empty(settings, results)
    return write_dataset_info(settings, vocab, results, todo, elapsed, workers, command)


def check_not_empty(settings: Settings, results: dict[int, dict[str, Any]]) -> None:
    """Refuses a build that made no example (input of blank lines only); no
    dataset_info.json is written, so training will not take the shards."""
    if not sum(r.get("examples", 0) for r in results.values()):
        raise text_source.InputError(
            f"--input: {', '.join(settings.inputs)} hold(s) no words: no example was written "
            f"(the shards in {settings.output_dir} are unusable; delete them)"
        )


def _process_shards(
    settings: Settings, chunks: list[text_source.Chunk], todo: list[int], workers: int, progress
) -> dict[int, dict[str, Any]]:
    """Runs `todo` on this process and `workers - 1` spawned ones.

    Shards are claimed one at a time from a shared counter, and this process
    works from the start: a spawned worker spends time starting (seconds
    when static masking imports TensorFlow) before its first shard, so a
    small corpus may be done here before the others are up (they are then
    stopped), and a large one keeps every
    process busy to the end. Shard files are written atomically, so stopping
    a worker that holds no unfinished shard loses nothing.
    """
    if not todo:
        return {}
    if workers == 1:
        # No shared counter or queues: their semaphores would start
        # multiprocessing's resource-tracker process for nothing.
        here = _Worker(settings, chunks, types.SimpleNamespace(put=progress.add))
        return {shard: here.process_shard(shard) for shard in todo}
    results: dict[int, dict[str, Any]] = {}
    ctx = mp.get_context("spawn")  # not fork: a caller may hold TensorFlow's threads
    counter, done, updates = ctx.Value("i", 0), ctx.Queue(), ctx.Queue()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # inherited by the workers
    children = [
        ctx.Process(
            target=_child,
            args=(settings, chunks, updates, counter, todo, done),
            daemon=True,
        )
        for _ in range(workers - 1)
    ]
    for child in children:
        child.start()

    def collect(timeout: float) -> None:
        while True:
            try:
                progress.add(updates.get_nowait())
            except queue.Empty:
                break
        try:
            shard, stats = done.get(timeout=timeout)
        except queue.Empty:
            return
        if shard is None:
            error, trace = stats
            if isinstance(error, ValueError):  # bad input: the message names it
                raise error
            raise RuntimeError(f"a data_prep worker process failed:\n{trace}")
        results[shard] = stats

    try:
        here = _Worker(settings, chunks, types.SimpleNamespace(put=progress.add), one_thread=True)
        while (shard := _claim(counter, todo)) is not None:
            results[shard] = here.process_shard(shard)
            collect(0)
        while len(results) < len(todo):
            collect(0.2)
            if len(results) < len(todo) and not any(c.is_alive() for c in children):
                collect(1.0)  # a result may still be in flight from an exited worker
                if len(results) < len(todo):
                    codes = sorted({c.exitcode for c in children})
                    missing = sorted(set(todo) - set(results))
                    raise RuntimeError(
                        f"a data_prep worker process exited (status {codes}) before "
                        f"finishing shard(s) {missing}; rerun the same command to resume "
                        "(finished shards are kept)"
                    )
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
            child.join()
    collect(0)
    return results


def write_dataset_info(
    settings: Settings,
    vocab: Vocab,
    results: dict[int, dict[str, Any]],
    built: list[int],
    elapsed: float,
    workers: int,
    command: str,
    last_run: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """dataset_info.json from every shard's counts; returns it.

    `built` are the shards this run wrote (the rest were finished before);
    `last_run` adds to the record of this run.
    """
    shards = [results[s] for s in range(settings.num_shards)]
    total = {
        k: sum(s.get(k, 0) for s in shards) for k in shards[0] if isinstance(shards[0][k], int)
    }
    total.pop("bytes", None)
    info = {
        "schema_version": records.SCHEMA_VERSION,
        "features": list(records.SEQUENCE_FEATURES)
        + (list(records.MASKED_LM_FEATURES) if settings.masking != "none" else []),
        "vocab_file": _absolute(settings.vocab),
        "vocab_sha256": vocab.sha256,
        "vocab_size": vocab.size,
        "special_token_ids": vocab.special_ids,
        "lower_case": settings.lower_case,
        "max_seq_length": settings.max_seq_length,
        "max_predictions_per_seq": settings.max_predictions if settings.masking != "none" else None,
        "masking": {
            "scheme": settings.masking,
            "rate": settings.mask_rate,
            "whole_word": settings.whole_word_masking,
        },
        "dupe_factor": settings.dupe_factor,
        "pack_documents": settings.pack_documents,
        "seed": settings.seed,
        "compression": settings.compression,
        "num_shards": settings.num_shards,
        "shards": [
            {"file": s["file"], "examples": s["examples"], "bytes": s["bytes"]} for s in shards
        ],
        "totals": total,
        "tokens_lost": total["tokens_read"] * settings.dupe_factor - total["tokens_written"],
        "last_run": {
            "seconds": round(elapsed, 3),
            "shards_built": len(built),
            "words": sum(results[s]["words"] for s in built),
            "workers": workers,
            **(last_run or {}),
        },
        "command_line": command,
        "inputs": [_absolute(p) for p in settings.inputs],
    }
    storage.write_bytes(
        storage.join(settings.output_dir, records.DATASET_INFO),
        (json.dumps(info, indent=2, sort_keys=True) + "\n").encode(),
    )
    return info


def command() -> None:
    """The command line's job, on the parsed flags (an InputError is bad input)."""
    settings = settings_from_flags()
    info = build(settings, FLAGS.num_workers, FLAGS.overwrite, " ".join(sys.argv))
    print_summary(settings, info)


def settings_from_flags() -> Settings:
    for name in ("input", "vocab", "output_dir"):
        if not getattr(FLAGS, name):
            raise ValueError(f"--{name} is required")
    return Settings(
        inputs=tuple(text_source.expand_globs(FLAGS.input)),
        vocab=FLAGS.vocab,
        output_dir=FLAGS.output_dir,
        max_seq_length=FLAGS.max_seq_length,
        num_shards=FLAGS.num_shards,
        masking=FLAGS.masking,
        mask_rate=FLAGS.mask_rate,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq,
        whole_word_masking=FLAGS.whole_word_masking,
        dupe_factor=FLAGS.dupe_factor,
        pack_documents=FLAGS.pack_documents,
        seed=FLAGS.seed,
        lower_case=FLAGS.lower_case,
        compression=FLAGS.compression,
        chunk_bytes=FLAGS.chunk_bytes,
    )


def print_summary(settings: Settings, info: dict[str, Any]) -> None:
    t = info["totals"]
    run_info = info["last_run"]
    secs = max(run_info["seconds"], 1e-9)
    print(
        f"Wrote {t['examples']:,} examples in {info['num_shards']} shard(s) to {settings.output_dir}\n"
        f"  documents {t['docs']:,}  words {t['words']:,}  tokens read {t['tokens_read']:,}  "
        f"tokens written {t['tokens_written']:,} (dupe_factor {settings.dupe_factor}; "
        f"lost {info['tokens_lost']:,})\n"
        f"  masked tokens {t['masked_tokens']:,}  padding {t['padding']:,}  "
        f"invalid UTF-8 bytes replaced {t['invalid_utf8_replaced']:,}\n"
        f"  this run: {run_info['shards_built']} shard(s) in {secs:.1f} s, "
        f"{run_info['words'] / secs:,.0f} words/s"
    )


def run() -> None:
    cli.main(
        define_flags,
        command,
        required=("input", "vocab", "output_dir"),
        output_dirs=("output_dir",),
    )


if __name__ == "__main__":
    run()
