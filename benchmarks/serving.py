r"""Serving latency and throughput of one fine-tuned ELECTRA-Small classifier.

    python benchmarks/serving.py [--rounds=3] [--requests=200] [--threads=N]

Fine-tunes `small` briefly on the SST-2-like set (the weights only need to be
real; speed does not depend on accuracy), then measures, interleaved over
--rounds (medians reported), text in -> label out:
* ours: the exported SavedModel's `serving_default` (in-graph tokenization),
  served as the README recommends for a CPU: one intra-op thread per op,
  --threads inter-op threads, exported with --batch_shards=--threads so that
  a batch is spread over the cores (--tf_threading=pool: TensorFlow's
  default of --threads intra-op threads and no shards, for comparison);
* hf: the Hugging Face transformers `text-classification` pipeline in PyTorch
  with the same weights (our HF export) and a fast tokenizer on the same vocab;
* tflite-<variant>: each TFLite variant with the Python tokenizer, batch 1.
Batch-1 latency (p50/p99 over --requests dev sentences, one request at a
time) and batch-32 throughput (the 1,056 dev sentences in batches of 32;
TFLite runs batch 1, so its figure is sequential). --threads is the cores
each framework gets (default: all): PyTorch's threads, TensorFlow's as
above. Writes benchmarks/results_serving.json (with a _threads<N> and/or
_pool suffix for the other settings) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("ELECTRA_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))


def _percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="Cores for each framework: PyTorch's threads; TensorFlow's, see --tf_threading.",
    )
    parser.add_argument(
        "--tf_threading",
        choices=("shards", "pool"),
        default="shards",
        help="shards: 1 intra-op thread, --threads inter-op threads and batch shards; "
        "pool: --threads intra-op threads, no shards (TensorFlow's default).",
    )
    args = parser.parse_args()
    sys.path.insert(0, REPO)
    import numpy as np
    import tensorflow as tf

    shards = args.threads if args.tf_threading == "shards" else 1
    tf.config.threading.set_intra_op_parallelism_threads(args.threads // shards)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import tensorflow_text  # noqa: F401
    import torch
    import transformers

    from data_prep.build_finetuning_data import Settings, build
    from electra_tf.checkpoints import load_task_model
    from electra_tf.config import ElectraConfig
    from electra_tf.convert import huggingface
    from electra_tf.finetuning.job import FinetuneOptions, run_finetuning
    from electra_tf.serving.saved_model import export
    from electra_tf.serving.tflite_export import LiteClassifier, convert

    torch.set_num_threads(args.threads)
    work = tempfile.mkdtemp(prefix="serving-bench-")
    quiet = io.StringIO()
    sst2 = os.path.join(SHARED, "sst2_like")
    vocab = os.path.join(SHARED, "vocab", "uncased_vocab.txt")
    build(Settings("sst-2", sst2, f"{work}/data", vocab, max_seq_length=128), quiet)
    run_finetuning(
        FinetuneOptions(
            data_dir=f"{work}/data",
            model_dir=f"{work}/model",
            config=ElectraConfig.from_preset("small", vocab_size=30522),
            learning_rate=3e-4,
            adam_bias_correction=True,
            num_train_epochs=0.1,
            task_head="hf",  # the peer runs the same weights: HF's classifier layout
        ),
        quiet,
    )
    best = f"{work}/model/final"
    saved = export(best, f"{work}/serving/sst2", batch_shards=shards)
    model, _ = load_task_model(best)
    huggingface.save(model, f"{work}/hf")
    hf_tokenizer = transformers.ElectraTokenizerFast(vocab_file=vocab, do_lower_case=True)
    hf_model = transformers.ElectraForSequenceClassification.from_pretrained(f"{work}/hf").eval()
    pipe = transformers.pipeline(
        "text-classification", model=hf_model, tokenizer=hf_tokenizer, device=-1, truncation=True
    )
    variants = {}
    for quantize in ("none", "float16", "dynamic", "int8"):
        path = f"{work}/edge/{quantize}/model.tflite"
        convert(saved, path, quantize, os.path.join(sst2, "train.tsv"), 200)
        variants[quantize] = LiteClassifier(path)

    with open(os.path.join(sst2, "dev.tsv"), encoding="utf-8") as f:
        texts = [line.split("\t")[0] for line in f][1:]
    serve = tf.saved_model.load(saved).signatures["serving_default"]

    # Same predictions from the three stacks (the weights are the same).
    ours_labels = serve(text=tf.constant(texts[:64]))["label_ids"].numpy()
    hf_labels = [int(r["label"].split("_")[-1]) for r in pipe(texts[:64], batch_size=32)]
    lite = variants["none"]
    lite_labels = [
        int(np.argmax(lite.predict(lite.tokenizer.encode(t, max_length=lite.length))["logits"]))
        for t in texts[:64]
    ]
    agreement = {
        "hf_vs_ours": float(np.mean(ours_labels == np.asarray(hf_labels))),
        "tflite_vs_ours": float(np.mean(ours_labels == np.asarray(lite_labels))),
    }

    def ours_one(t):
        serve(text=tf.constant([t]))

    def ours_batch(batch):
        serve(text=tf.constant(batch))

    def hf_one(t):
        pipe(t)

    def hf_batch(batch):
        pipe(batch, batch_size=len(batch))

    def lite_one(clf):
        return lambda t: clf.predict(clf.tokenizer.encode(t, max_length=clf.length))

    systems = {
        "ours (SavedModel, text in)": (ours_one, ours_batch),
        "hf pipeline (PyTorch)": (hf_one, hf_batch),
    }
    for name, clf in variants.items():
        one = lite_one(clf)
        systems[f"tflite {name}"] = (one, lambda batch, one=one: [one(t) for t in batch])

    requests = texts[: args.requests]
    batches = [texts[i : i + 32] for i in range(0, len(texts), 32)]
    for one, batch in systems.values():  # warm-up (tracing, allocation)
        for t in requests[:5]:
            one(t)
        batch(batches[0])
    raw = {name: {"latency": [], "throughput": []} for name in systems}
    for _ in range(args.rounds):
        for name, (one, batch) in systems.items():
            latencies = []
            for t in requests:
                start = time.perf_counter()
                one(t)
                latencies.append(time.perf_counter() - start)
            start = time.perf_counter()
            for b in batches:
                batch(b)
            elapsed = time.perf_counter() - start
            raw[name]["latency"].append(latencies)
            raw[name]["throughput"].append(len(texts) / elapsed)
    results = {}
    for name, r in raw.items():
        results[name] = {
            "p50_ms": 1000 * statistics.median(_percentile(x, 50) for x in r["latency"]),
            "p99_ms": 1000 * statistics.median(_percentile(x, 99) for x in r["latency"]),
            "batch32_examples_per_s": statistics.median(r["throughput"]),
        }
    file_sizes = {n: os.path.getsize(f"{work}/edge/{n}/model.tflite") for n in variants}
    out = {
        "model": "ELECTRA-Small classifier (12 layers, hidden 256), max 128 tokens",
        "rounds": args.rounds,
        "requests": len(requests),
        "threads": {
            "tensorflow": {"intra_op": args.threads // shards, "inter_op": args.threads},
            "batch_shards": shards,
            "torch": torch.get_num_threads(),
            "tflite": 1,
        },
        "label_agreement": agreement,
        "tflite_file_bytes": file_sizes,
        "results": results,
    }
    name = "results_serving"
    if args.threads != (os.cpu_count() or 1):
        name += f"_threads{args.threads}"
    if args.tf_threading != "shards":
        name += f"_{args.tf_threading}"
    name += ".json"
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out, indent=2))
    print("\n| system | batch-1 p50 (ms) | batch-1 p99 (ms) | batch-32 throughput (ex/s) |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['batch32_examples_per_s']:.0f} |"
        )


if __name__ == "__main__":
    main()
