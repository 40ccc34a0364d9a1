r"""Pre-training TFRecords on Apache Beam: `build_pretraining_data` at any scale.

    # locally, 2 processes
    python -m data_prep.beam.pretraining_data --input='corpus/*.txt.gz' \
        --vocab=vocab.txt --output_dir=data/ --num_shards=64 \
        --runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing

    # on Dataflow (pip install "electra-tf[beam]" "apache-beam[gcp]==2.77.0")
    python -m data_prep.beam.pretraining_data --input='gs://b/corpus/*.txt.gz' \
        --vocab=gs://b/vocab.txt --output_dir=gs://b/data --num_shards=1024 \
        --runner=DataflowRunner --project=P --region=R --temp_location=gs://b/tmp \
        --setup_file=./setup.py

The pipeline is the local job's, step by step:

1. each input file is cut into chunks (`text_source.plan_file_chunks`, in
   parallel over files); the chunks get their global index from the per-file
   counts, so they are numbered exactly as the local job numbers them;
2. shard s takes the chunks [s*K/S, (s+1)*K/S), as locally;
3. each chunk is read, tokenized, packed and masked by the local worker's
   `chunk_records`, its randomness keyed by (seed, chunk index, copy);
4. a shard's chunks are written in index order by the local `write_shard`.

So the shards are byte-for-byte the local job's for the same inputs, flags
and seed (position-keyed sharding: a shard is a fixed range of input bytes),
whatever the runner, worker count or retry order. Finished shards are kept on
a rerun, as locally. `dataset_info.json` is written by the local code from
the shards' sidecars; the same counts are Beam counters (namespace
"data_prep") while the job runs and are checked against it at the end.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import apache_beam as beam
from absl import flags
from apache_beam.metrics import Metrics

from data_prep import beam as beam_support
from data_prep import build_pretraining_data as local
from data_prep import storage, text_source
from electra_tf import cli

FLAGS = flags.FLAGS
NAMESPACE = "data_prep"


class _ChunkRecords(beam.DoFn):
    """(shard, chunk) -> (shard, (chunk index, records, counts))."""

    def __init__(self, settings: local.Settings):
        self.settings = settings
        self.worker = None

    def setup(self) -> None:
        # One TensorFlow thread per worker process, as the local job's workers
        # (TensorFlow is imported only for static masking).
        self.worker = local._Worker(self.settings, [], None, one_thread=True)

    def process(self, element):
        shard, chunk = element
        records, stats = self.worker.chunk_records(chunk)
        for name, value in stats.items():
            Metrics.counter(NAMESPACE, name).inc(value)
        yield shard, (chunk.index, records, stats)


def _number(planned, counts: dict[int, int]):
    file_index, chunks = planned
    first = sum(n for i, n in counts.items() if i < file_index)
    yield from text_source.number_chunks(chunks, first)


def _to_shard(chunk, total: int, num_shards: int, todo: frozenset):
    # The shard s with s*K//S <= index < (s+1)*K//S (local.shard_range).
    shard = min(chunk.index * num_shards // max(total, 1), num_shards - 1)
    while local.shard_range(shard, total, num_shards)[0] > chunk.index:
        shard -= 1
    while local.shard_range(shard, total, num_shards)[1] <= chunk.index:
        shard += 1
    if shard in todo:
        yield shard, chunk


def _plan(file_index_and_path, chunk_bytes: int):
    file_index, path = file_index_and_path
    return file_index, text_source.plan_file_chunks(path, file_index, chunk_bytes)


def _write(element, settings: local.Settings):
    shard, parts = element
    ordered = sorted((p for p in parts if p is not None), key=lambda part: part[0])
    stats = local.write_shard(settings, shard, ((records, st) for _, records, st in ordered))
    Metrics.counter(NAMESPACE, "shards").inc()
    yield shard, stats


def build_pipeline(pipeline, settings: local.Settings, todo: list[int]):
    """Adds the shard-building steps to `pipeline`; returns the written shards' stats."""
    planned = (
        pipeline
        | "Files" >> beam.Create(list(enumerate(settings.inputs)))
        | "Reshuffle files" >> beam.Reshuffle()
        | "Plan chunks" >> beam.Map(_plan, chunk_bytes=settings.chunk_bytes)
    )
    counts = planned | "Chunks per file" >> beam.Map(lambda fc: (fc[0], len(fc[1])))
    total = counts | "Values" >> beam.Values() | "Total chunks" >> beam.CombineGlobally(sum)
    chunks = planned | "Number chunks" >> beam.FlatMap(_number, counts=beam.pvalue.AsDict(counts))
    parts = (
        chunks
        | "Assign shards"
        >> beam.FlatMap(
            _to_shard,
            total=beam.pvalue.AsSingleton(total),
            num_shards=settings.num_shards,
            todo=frozenset(todo),
        )
        | "Spread chunks" >> beam.Reshuffle()
        | "Tokenize, pack, mask" >> beam.ParDo(_ChunkRecords(settings))
    )
    # Every shard to build, so that a shard with no chunk is written (empty) too.
    every_shard = pipeline | "Shards" >> beam.Create([(s, None) for s in todo])
    return (
        (parts, every_shard)
        | "Together" >> beam.Flatten()
        | "By shard" >> beam.GroupByKey()
        | "Write shards" >> beam.FlatMap(_write, settings=settings)
    )


def build(
    settings: local.Settings, pipeline_args: list[str], overwrite: bool = False, command: str = ""
) -> dict[str, Any]:
    """Builds (or finishes) the dataset on Beam; returns the dataset_info dict."""
    settings.validate()
    settings = local.fit_shards(settings)
    vocab = storage.load_vocab(settings.vocab)
    local.prepare_output_dir(settings, settings.fingerprint(vocab), overwrite)
    done = local.finished_shards(settings)
    todo = [s for s in range(settings.num_shards) if s not in done]
    start = time.time()
    options = beam_support.pipeline_options(pipeline_args)
    result = None
    if todo:
        pipeline = beam.Pipeline(options=options)
        build_pipeline(pipeline, settings, todo)
        result = beam_support.run_pipeline(pipeline)
    elapsed = time.time() - start
    results = local.finished_shards(settings)
    missing = [s for s in range(settings.num_shards) if s not in results]
    if missing:
        raise RuntimeError(f"the pipeline finished but shards {missing} are not in the output")
    local.check_not_empty(settings, results)
    workers = options.get_all_options().get("direct_num_workers") or 0
    counted = beam_support.counters(result, NAMESPACE) if result is not None else {}
    built = {k: sum(results[s].get(k, 0) for s in todo) for k in local.STAT_KEYS}
    disagree = {k: (counted[k], v) for k, v in built.items() if k in counted and counted[k] != v}
    if disagree:  # a runner's attempted (not committed) counters include retried bundles
        print(
            f"[data_prep] note: Beam counters differ from the shards: {disagree}", file=sys.stderr
        )
    return local.write_dataset_info(
        settings, vocab, results, todo, elapsed, workers, command, {"beam_counters": counted}
    )


def command(pipeline_args: list[str]) -> None:
    """The command line's job: our flags parsed, the rest for Beam."""
    beam_support.pipeline_options(pipeline_args)  # a mistyped flag fails first
    settings = local.settings_from_flags()
    info = build(settings, pipeline_args, FLAGS.overwrite, " ".join(sys.argv))
    local.print_summary(settings, info)


def main() -> None:
    cli.main(
        lambda: local.define_flags(local=False),
        command,
        required=("input", "vocab", "output_dir"),
        pass_through=True,
        output_dirs=("output_dir",),
    )


if __name__ == "__main__":
    main()
