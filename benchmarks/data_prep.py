r"""data_prep throughput and memory, side by side with Model Garden.

    python benchmarks/data_prep.py [--rounds=3] [--workers=2]

Both tools turn the same text into pre-training TFRecords with the standard
uncased vocab, max_seq_length 128, dupe_factor 1, timed end to end (process
start to the last shard written). Two rows of ours:
* ours: what our pre-training reads by default, unmasked shards (training
  draws fresh masks every step, as the ELECTRA reference does);
* ours_static_masking: masks written into the shards (`--masking=electra`),
  the same kind of output as the peer's.
On two corpora of different shape:
* long_documents: ~20 MB of ../shared/data/corpus text (sotu, web, mhcc;
  decompressed to plain .txt for the peer, which cannot read .gz), three
  files without blank lines, so three long documents;
* builtin_corpus: the demo's corpus (`data_prep.builtin_corpus`, Python's
  docstrings), thousands of short documents.
Runs are interleaved; medians are reported. Peak RSS is sampled every 50 ms
over the whole process tree (the sum over our workers, and the largest single
process), and measured at two sizes of the long corpus to show whether
memory grows with the corpus.

Peer: `python -m official.nlp.data.create_pretraining_data` (tf-models-official).
Also timed: the same job on Apache Beam's DirectRunner (`data_prep.beam`),
with as many worker processes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import psutil

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("ELECTRA_SHARED_DATA", REPO.parent / "shared" / "data"))
FILES = ("sotu.txt.gz", "web.txt.gz", "mhcc.txt.gz")


def run_measured(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Runs `cmd`; returns wall seconds and peak RSS (tree sum, largest process)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    parent = psutil.Process(proc.pid)
    peak_sum = peak_one = 0
    while proc.poll() is None:
        try:
            procs = [parent, *parent.children(recursive=True)]
            rss = [p.memory_info().rss for p in procs]
            peak_sum, peak_one = max(peak_sum, sum(rss)), max(peak_one, max(rss))
        except psutil.Error:
            pass
        time.sleep(0.05)
    out = proc.stdout.read().decode(errors="replace")
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out[-3000:]}")
    return {
        "seconds": time.perf_counter() - start,
        "rss_sum_mb": peak_sum / 2**20,
        "rss_max_mb": peak_one / 2**20,
    }


def _long_corpus(work: pathlib.Path) -> tuple[list[str], int, int]:
    """sotu + web + mhcc as plain text (the peer cannot read .gz): few, long documents."""
    paths, words, docs = [], 0, 0
    for name in FILES:
        with gzip.open(SHARED / "corpus" / name, "rt", encoding="utf-8") as f:
            text = f.read()
        words += len(text.split())
        docs += _count_documents(text)
        path = work / name.replace(".gz", "")
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    return paths, words, docs


def _builtin_corpus(work: pathlib.Path) -> tuple[list[str], int, int]:
    """The demo's built-in corpus (Python's docstrings): many short documents."""
    path = work / "builtin.txt"
    subprocess.run(
        [sys.executable, "-m", "data_prep.builtin_corpus", f"--output={path}"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    text = path.read_text(encoding="utf-8")
    return [str(path)], len(text.split()), _count_documents(text)


def _count_documents(text: str) -> int:
    """Documents as both tools split them: runs of non-blank lines."""
    return sum(1 for block in re.split(r"\n\s*\n", text) if block.strip())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip_peer", action="store_true")
    parser.add_argument("--skip_beam", action="store_true")
    parser.add_argument("--json", help="Also write the results here.")
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"benchmark needs {SHARED} (the shared data folder)")
    vocab = str(SHARED / "vocab" / "uncased_vocab.txt")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench_data_prep_"))
    try:
        corpora = {"long_documents": _long_corpus(work), "builtin_corpus": _builtin_corpus(work)}
        half = work / "half.txt"  # the first half of the long corpus: memory vs corpus size
        long_text = "".join(pathlib.Path(p).read_text() for p in corpora["long_documents"][0])
        half.write_text(long_text[: len(long_text) // 2])
        for name, (paths, words, docs) in corpora.items():
            mb = sum(os.path.getsize(p) for p in paths) / 1e6
            print(f"{name}: {mb:.1f} MB, {words:,} words, {docs:,} documents")
        print(f"{args.workers} workers; {args.rounds} rounds")

        def ours(
            inputs: list[str], tag: str, beam: bool = False, masking: str = "none"
        ) -> dict[str, float]:
            out = work / f"{'beam' if beam else 'ours'}_{tag}_{masking}"
            shutil.rmtree(out, ignore_errors=True)
            module, workers = "data_prep.build_pretraining_data", [f"--num_workers={args.workers}"]
            if beam:  # the same job on Apache Beam's DirectRunner, one process per worker
                module, workers = (
                    "data_prep.beam.pretraining_data",
                    [
                        "--runner=DirectRunner",
                        f"--direct_num_workers={args.workers}",
                        "--direct_running_mode=multi_processing",
                    ],
                )
            return run_measured(
                [
                    sys.executable,
                    "-m",
                    module,
                    f"--input={','.join(inputs)}",
                    f"--vocab={vocab}",
                    f"--output_dir={out}",
                    "--max_seq_length=128",
                    "--num_shards=16",
                    *workers,
                    f"--masking={masking}",
                    "--dupe_factor=1",
                ],
                env,
            )

        def peer(inputs: list[str], tag: str) -> dict[str, float]:
            return run_measured(
                [
                    sys.executable,
                    "-m",
                    "official.nlp.data.create_pretraining_data",
                    f"--input_file={','.join(inputs)}",
                    f"--output_file={work / f'peer_{tag}.tfrecord'}",
                    f"--vocab_file={vocab}",
                    "--do_lower_case=true",
                    "--max_seq_length=128",
                    "--max_predictions_per_seq=20",
                    "--masked_lm_prob=0.15",
                    "--dupe_factor=1",
                    "--random_seed=12345",
                ],
                env,
            )

        runs: dict[str, dict[str, list[dict[str, float]]]] = {
            c: {"ours": [], "ours_static_masking": [], "peer": [], "beam_direct": []}
            for c in corpora
        }
        for r in range(args.rounds):
            for corpus, (paths, _, _) in corpora.items():
                results = runs[corpus]
                results["ours"].append(ours(paths, corpus))
                results["ours_static_masking"].append(ours(paths, corpus, masking="electra"))
                line = (
                    f"round {r + 1} {corpus}: ours {results['ours'][-1]['seconds']:.1f} s, "
                    f"static masking {results['ours_static_masking'][-1]['seconds']:.1f} s"
                )
                if not args.skip_beam and corpus == "long_documents":
                    results["beam_direct"].append(ours(paths, corpus, beam=True))
                    line += f", beam {results['beam_direct'][-1]['seconds']:.1f} s"
                if not args.skip_peer:
                    results["peer"].append(peer(paths, corpus))
                    line += f", peer {results['peer'][-1]['seconds']:.1f} s"
                print(line, flush=True)
        half_ours = ours([str(half)], "half")
        half_peer = None if args.skip_peer else peer([str(half)], "half")

        def med(runs, key):
            return statistics.median(x[key] for x in runs)

        table: dict = {"workers": args.workers, "rounds": args.rounds}
        for corpus, results in runs.items():
            paths, words, docs = corpora[corpus]
            row: dict = {"words": words, "documents": docs}
            for name, measured in results.items():
                if measured:
                    secs = med(measured, "seconds")
                    row[name] = {
                        "seconds": round(secs, 2),
                        "words_per_second": round(words / secs),
                        "peak_rss_mb_sum": round(med(measured, "rss_sum_mb")),
                        "peak_rss_mb_largest_process": round(med(measured, "rss_max_mb")),
                        "rounds_seconds": [round(x["seconds"], 2) for x in measured],
                    }
            if "beam_direct" in row:
                row["beam_vs_local"] = round(
                    row["beam_direct"]["words_per_second"] / row["ours"]["words_per_second"], 2
                )
            if "peer" in row:
                for mine, key in (("ours", "speed_ratio"), ("ours_static_masking", "static_ratio")):
                    row[key] = round(
                        row[mine]["words_per_second"] / row["peer"]["words_per_second"], 1
                    )
            table[corpus] = row
        table["long_documents"]["ours"]["half_corpus_peak_rss_mb_sum"] = round(
            half_ours["rss_sum_mb"]
        )
        if half_peer:
            table["long_documents"]["peer"]["half_corpus_peak_rss_mb_sum"] = round(
                half_peer["rss_sum_mb"]
            )
        print(json.dumps(table, indent=2))
        if args.json:
            pathlib.Path(args.json).write_text(json.dumps(table, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
