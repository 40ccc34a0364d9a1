r"""A WordPiece vocabulary on Apache Beam: `build_vocab` for corpora past one machine.

    python -m data_prep.beam.vocab --input='gs://b/corpus/*.txt.gz' \
        --vocab_size=30522 --output=gs://b/vocab.txt \
        --runner=DataflowRunner --project=P --region=R --temp_location=gs://b/tmp \
        --setup_file=./setup.py

The shape of tf-text's own Beam vocab pipeline (`generate_vocab.py`): words
are counted in parallel, summed per word, filtered by `--min_count`, and the
surviving (word, count) pairs go to one worker that runs tf-text's WordPiece
learner. Counting is the local job's `WordCounter` over the local job's
chunks, and learning is the local `learn_vocab`, so the vocab (special-token
layout included) equals `build_vocab`'s for the same inputs and flags.
"""

from __future__ import annotations

import time

import apache_beam as beam
from absl import flags

from data_prep import beam as beam_support
from data_prep import build_vocab as local
from data_prep import storage, text_source
from electra_tf import cli

FLAGS = flags.FLAGS


class _CountWords(beam.DoFn):
    def __init__(self, lower_case: bool):
        self.lower_case = lower_case
        self.counter = None

    def setup(self) -> None:
        self.counter = local.WordCounter(self.lower_case)

    def process(self, chunk):
        yield from self.counter.count(chunk).items()


def _plan(path: str, chunk_bytes: int):
    return text_source.plan_file_chunks(path, 0, chunk_bytes)


def _learn_and_write(pairs, vocab_size: int, min_count: int, max_unique_chars: int, output: str):
    vocab = local.learn_vocab(dict(pairs), vocab_size, min_count, max_unique_chars)
    storage.write_bytes(output, ("\n".join(vocab) + "\n").encode("utf-8"))
    yield len(vocab)


def build_pipeline(pipeline, paths: list[str], output: str, vocab_size: int, lower_case: bool,
                   min_count: int, max_unique_chars: int):  # fmt: skip
    """Adds the counting and learning steps to `pipeline`."""
    return (
        pipeline
        | "Files" >> beam.Create(paths)
        | "Plan chunks" >> beam.FlatMap(_plan, chunk_bytes=text_source.DEFAULT_CHUNK_BYTES)
        | "Spread chunks" >> beam.Reshuffle()
        | "Count words" >> beam.ParDo(_CountWords(lower_case))
        | "Sum per word" >> beam.CombinePerKey(sum)
        | "Drop rare words" >> beam.Filter(lambda word_count: word_count[1] >= min_count)
        | "Gather" >> beam.combiners.ToList()
        | "Learn and write"
        >> beam.FlatMap(
            _learn_and_write,
            vocab_size=vocab_size,
            min_count=min_count,
            max_unique_chars=max_unique_chars,
            output=output,
        )
    )


def command(pipeline_args: list[str]) -> None:
    """The command line's job: our flags parsed, the rest for Beam."""
    start = time.time()
    options = beam_support.pipeline_options(pipeline_args)  # a mistyped flag fails first
    paths = text_source.expand_globs(FLAGS.input)
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, paths, FLAGS.output, FLAGS.vocab_size, FLAGS.lower_case,
                   FLAGS.min_count, FLAGS.max_unique_chars)  # fmt: skip
    beam_support.run_pipeline(pipeline)
    vocab = storage.load_vocab(FLAGS.output).tokens
    print(
        f"Wrote {len(vocab):,} tokens to {FLAGS.output} in {time.time() - start:.1f} s: "
        f"{local.summary(vocab)}"
    )


def main() -> None:
    cli.main(
        local.define_flags,
        command,
        required=("input", "output"),
        pass_through=True,
        output_files=("output",),
    )


if __name__ == "__main__":
    main()
