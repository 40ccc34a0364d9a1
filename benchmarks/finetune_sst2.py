r"""SST-2-like dev accuracy: fine-tuned from a pre-trained `tiny` vs from random init.

    python benchmarks/finetune_sst2.py [--seeds=3] [--pretrain_steps=250,2000]

Pre-trains `tiny` (batch 32, length 64, ELECTRA recipe, lr 1e-3, Adam bias
correction) on the shared corpus (Moby Dick, Shakespeare, State of the Union
addresses) for each budget in --pretrain_steps, then fine-tunes each start
point and random init with the same budget (2 epochs of the 8,456 training
sentences, lr 1e-3, layer-wise decay 0.8) for every seed, and reports the
mean and spread of the dev accuracy. Writes benchmarks/results_finetune_sst2.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("ELECTRA_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pretrain_steps", default="250,2000")
    parser.add_argument("--epochs", type=float, default=2.0)
    args = parser.parse_args()
    sys.path.insert(0, REPO)
    from data_prep.build_finetuning_data import Settings as FinetuneSettings
    from data_prep.build_finetuning_data import build as build_finetune
    from data_prep.build_pretraining_data import Settings, build
    from electra_tf.config import ElectraConfig
    from electra_tf.finetuner import FinetuneOptions, run_finetuning
    from electra_tf.trainer import PretrainOptions, run_pretraining

    quiet = io.StringIO()
    vocab = os.path.join(SHARED, "vocab", "uncased_vocab.txt")
    work = tempfile.mkdtemp(prefix="finetune_sst2-")
    corpus = [
        os.path.join(SHARED, "corpus", f"{n}.txt.gz") for n in ("mobydick", "shakespeare", "sotu")
    ]
    build(Settings(inputs=tuple(corpus), vocab=vocab, output_dir=f"{work}/pretrain",
                   max_seq_length=64, num_shards=4), num_workers=2)  # fmt: skip
    build_finetune(FinetuneSettings("sst-2", os.path.join(SHARED, "sst2_like"), f"{work}/sst2",
                                    vocab, max_seq_length=64), quiet)  # fmt: skip
    config = ElectraConfig.from_preset("tiny", vocab_size=30522, max_position_embeddings=64)
    starts = {"random init": None}
    pretraining = {}
    for steps in [int(s) for s in args.pretrain_steps.split(",") if s]:
        model_dir = f"{work}/pretrained-{steps}"
        result = run_pretraining(
            PretrainOptions(
                config=config, train_data=f"{work}/pretrain/pretrain-*", model_dir=model_dir,
                max_seq_length=64, train_batch_size=32, num_train_steps=steps,
                learning_rate=1e-3, warmup_steps=min(60, steps // 4), adam_bias_correction=True,
                log_every_steps=50, save_checkpoints_steps=steps, shuffle_buffer=5000,
            ),
            stream=quiet,
        )  # fmt: skip
        starts[f"pre-trained {steps} steps"] = model_dir
        pretraining[steps] = {k: result["train"][k] for k in ("disc_auc", "gen_accuracy")}
        print(f"pre-trained {steps} steps: {pretraining[steps]}", flush=True)
    results = {}
    for name, init in starts.items():
        accuracies = []
        for seed in range(args.seeds):
            history = run_finetuning(
                FinetuneOptions(
                    data_dir=f"{work}/sst2", model_dir=f"{work}/ft-{len(results)}-{seed}",
                    init_checkpoint=init, config=None if init else config, learning_rate=1e-3,
                    adam_bias_correction=True, num_train_epochs=args.epochs, seed=seed,
                    log_every_steps=10000,
                ),
                stream=quiet,
            )  # fmt: skip
            accuracies.append(history["best"]["accuracy"])
        results[name] = {
            "mean": statistics.mean(accuracies),
            "stdev": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "runs": accuracies,
        }
        print(f"{name}: {results[name]}", flush=True)
    out = {
        "majority_class": 557 / 1056,
        "fine_tuning": f"{args.epochs} epochs, batch 32, lr 1e-3, layer-wise decay 0.8, length 64",
        "pretraining": pretraining,
        "results": results,
    }
    with open(os.path.join(HERE, "results_finetune_sst2.json"), "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
