r"""Does pre-training pay? ELECTRA vs MLM at equal pre-training FLOPs vs random init.

    python benchmarks/learning.py            # the full protocol, ~35 min on 2 cores
    python benchmarks/learning.py --quick    # a smoke run of every stage, ~4 min

The paper's claim (Clark et al. 2020, Figure 4 / Table 1) at a scale this
machine affords:

1. Data. Pre-training text: Moby Dick, Shakespeare and the State of the
   Union addresses from the shared corpus, plus the SST-2-like *training*
   sentences as unlabelled in-domain text (task-adaptive pre-training; their
   labels are never read), --in_domain_repeats times, each copy in a new
   order. Held-out text for the pre-training curves: Matthew Henry's
   commentary, which no model trains on. The standard 30,522-token uncased
   WordPiece vocab (or --vocab); unmasked shards, masked afresh every step
   (--pack_documents packs short documents into full sequences).
2. Pre-training. One encoder size (--num_layers x --hidden_size) for both
   objectives. ELECTRA trains a generator of --generator_fraction width with
   it; MLM (BERT's 80/10/10) trains the encoder alone. MLM gets as many steps
   as give it the same pre-training FLOPs as ELECTRA's --pretrain_steps
   (counted analytically, forward + backward, the vocab head at masked
   positions only). Both are evaluated on the held-out text every
   --eval_every steps: discriminator AUC, generator accuracy, MLM accuracy and
   the encoder's hidden-state spread (the collapse signal).
3. Fine-tuning. Random init, the ELECTRA discriminator and the MLM encoder,
   each on the full SST-2-like training set, on a fixed 1,000-example subset
   of it, and on WNUT-16 NER, all with the same recipe; --seeds seeds each;
   the score of the FINAL checkpoint on the dev set (never the best epoch).

Writes benchmarks/results_learning.json and benchmarks/learning_curves.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("ELECTRA_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
DEFAULT_VOCAB = os.path.join(SHARED, "vocab", "uncased_vocab.txt")
CORPUS = ("mobydick", "shakespeare", "sotu")
HELD_OUT = "mhcc"


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much of everything a run does."""

    pretrain_steps: int
    batch: int
    seq_len: int
    eval_every: int
    eval_batches: int
    seeds: int
    sst_epochs: float
    subset_epochs: float
    ner_epochs: float
    subset: int


FULL = Budget(1500, 32, 128, 250, 20, 3, 2.0, 10.0, 5.0, 1000)
QUICK = Budget(60, 16, 64, 30, 4, 2, 0.2, 1.0, 0.5, 1000)


# --- FLOPs ------------------------------------------------------------------------


def encoder_flops(tokens: int, hidden: int, layers: int, inner: int, seq_len: int) -> float:
    """Forward FLOPs of `layers` post-LN Transformer layers over `tokens` tokens."""
    per_token = 2 * (4 * hidden * hidden + 2 * hidden * inner) + 2 * 2 * seq_len * hidden
    return float(tokens * layers * per_token)


def step_flops(config, objective: str, batch: int, seq_len: int, masked: int) -> float:
    """Forward + backward FLOPs of one training step (3x the forward)."""
    tokens = batch * seq_len
    emb, vocab = config.embedding_size, config.vocab_size
    disc = encoder_flops(
        tokens, config.hidden_size, config.num_layers, config.intermediate_size, seq_len
    )
    if emb != config.hidden_size:
        disc += 2.0 * tokens * emb * config.hidden_size
    # The MLM head: dense to the embedding size, then the tied vocab projection.
    mlm_head = 2.0 * masked * (config.hidden_size * emb + emb * vocab)
    if objective == "mlm":
        return 3 * (disc + mlm_head)
    gh = config.generator_hidden_size
    gen = encoder_flops(
        tokens, gh, config.generator_num_layers, config.generator_intermediate_size, seq_len
    )
    if emb != gh:
        gen += 2.0 * tokens * emb * gh
    gen_head = 2.0 * masked * (gh * emb + emb * vocab)
    disc_head = 2.0 * tokens * config.hidden_size * (config.hidden_size + 1)
    return 3 * (disc + disc_head + gen + gen_head)


# --- data -------------------------------------------------------------------------


def _sst_rows(path: str) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8") as f:
        next(f)
        return [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()]


def prepare_data(
    work: str,
    budget: Budget,
    in_domain_repeats: int = 1,
    pack_documents: bool = False,
    vocab: str | None = None,
) -> dict[str, str]:
    """Pre-training shards (train and held-out) and the three fine-tuning sets,
    tokenized with `vocab` (default: the shared 30,522-piece uncased vocab)."""
    from data_prep.build_finetuning_data import Settings as FinetuneSettings
    from data_prep.build_finetuning_data import build as build_finetuning
    from data_prep.build_pretraining_data import Settings, build

    vocab = vocab or DEFAULT_VOCAB
    sst = os.path.join(SHARED, "sst2_like")
    train_rows = _sst_rows(os.path.join(sst, "train.tsv"))
    in_domain = os.path.join(work, "sst2_train_sentences.txt")
    sentences = [sentence for sentence, _ in train_rows]  # the text, never the labels
    with open(in_domain, "w", encoding="utf-8") as f:
        f.writelines(sentence + "\n" for sentence in sentences)
        for copy in range(1, in_domain_repeats):
            # Each further copy in a new order, so packing gives every sentence new neighbours.
            f.writelines(s + "\n" for s in random.Random(copy).sample(sentences, len(sentences)))
    held_out = os.path.join(work, "held_out.txt")
    with gzip.open(os.path.join(SHARED, "corpus", f"{HELD_OUT}.txt.gz"), "rt") as f:
        text = f.read(2_000_000)
    with open(held_out, "w", encoding="utf-8") as f:
        f.write(text[: text.rfind(" ")] + "\n")
    quiet = io.StringIO()
    inputs = [os.path.join(SHARED, "corpus", f"{name}.txt.gz") for name in CORPUS]
    common = dict(
        vocab=vocab, max_seq_length=budget.seq_len, masking="none", pack_documents=pack_documents
    )
    build(
        Settings(
            inputs=(*inputs, in_domain), output_dir=f"{work}/pretrain", num_shards=8, **common
        ),
        num_workers=2,
    )
    build(Settings(inputs=(held_out,), output_dir=f"{work}/held_out", num_shards=1, **common))
    # A fixed 1,000-example subset of the SST-2-like training set.
    subset_dir = os.path.join(work, "sst2_subset_raw")
    os.makedirs(subset_dir, exist_ok=True)
    rows = list(train_rows)
    random.Random(0).shuffle(rows)
    with open(os.path.join(subset_dir, "train.tsv"), "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        f.writelines(f"{s}\t{label}\n" for s, label in rows[: budget.subset])
    with open(os.path.join(sst, "dev.tsv"), encoding="utf-8") as src:
        dev = src.read()
    with open(os.path.join(subset_dir, "dev.tsv"), "w", encoding="utf-8") as f:
        f.write(dev)
    sets = {
        "sst2": ("sst-2", sst, 64),
        "sst2_1k": ("sst-2", subset_dir, 64),
        "wnut": ("conll", os.path.join(SHARED, "ner"), 64),
    }
    out = {}
    for name, (task, input_dir, length) in sets.items():
        out[name] = os.path.join(work, f"ft-{name}")
        build_finetuning(
            FinetuneSettings(task, input_dir, out[name], vocab, max_seq_length=length), quiet
        )
    return out


# --- runs -------------------------------------------------------------------------


def pretrain(work, name, config, objective, steps, budget, args, extra) -> dict:
    from electra_tf.pretraining.job import PretrainOptions, run_pretraining

    model_dir = os.path.join(work, "pretrain-" + "".join(c if c.isalnum() else "_" for c in name))
    t0 = time.time()
    options = PretrainOptions(
        config=config,
        train_data=f"{work}/pretrain/pretrain-*",
        eval_data=f"{work}/held_out/pretrain-*",
        model_dir=model_dir,
        objective=objective,
        max_seq_length=budget.seq_len,
        train_batch_size=budget.batch,
        eval_batch_size=budget.batch,
        num_train_steps=steps,
        learning_rate=args.pretrain_lr,
        warmup_steps=max(1, steps // 10),
        log_every_steps=budget.eval_every,
        eval_every_steps=budget.eval_every,
        save_checkpoints_steps=budget.eval_every * max(1, steps // budget.eval_every // 2),
        num_eval_steps=budget.eval_batches,
        shuffle_buffer=5000,
        seed=args.seed,
        **extra,
    )
    results = run_pretraining(options, stream=sys.stdout)
    curve = _eval_events(model_dir)
    start = results.get("eval_at_start") or {}
    if start.get("hidden_spread") is not None:  # the initialisation, measured before step 1
        curve.insert(0, {"step": 0, "hidden_spread": start["hidden_spread"]})
    return {
        "model_dir": model_dir,
        "steps": steps,
        "seconds": time.time() - t0,
        "final_eval": results["eval"],
        "start_eval": results.get("eval_at_start"),
        "curve": curve,
    }


def _eval_events(model_dir: str) -> list[dict]:
    """The eval scalars TensorBoard got, by step."""
    import tensorflow as tf

    by_step: dict[int, dict] = {}
    eval_dir = os.path.join(model_dir, "eval")
    if not os.path.isdir(eval_dir):
        return []
    for name in sorted(os.listdir(eval_dir)):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(eval_dir, name)):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor))
                by_step.setdefault(int(event.step), {"step": int(event.step)})[value.tag] = number
    return [by_step[s] for s in sorted(by_step)]


def finetune(work, data_dir, init, config, seed, epochs, args) -> float:
    from electra_tf.finetuning.job import FinetuneOptions, run_finetuning

    pretrained = init is not None
    history = run_finetuning(
        FinetuneOptions(
            data_dir=data_dir,
            model_dir=tempfile.mkdtemp(dir=work, prefix="ft-run-"),
            init_checkpoint=init,
            config=None if pretrained else config,
            learning_rate=args.finetune_lr if pretrained else args.random_init_lr,
            layerwise_lr_decay=args.layerwise_lr_decay if pretrained else 1.0,
            num_train_epochs=epochs,
            train_batch_size=32,
            seed=seed,
            log_every_steps=100_000,
        ),
        stream=io.StringIO(),
    )
    with open(os.path.join(data_dir, "finetune_info.json")) as f:
        metric = json.load(f)["main_metric"]
    return float(history["evaluations"][-1][metric])  # the FINAL checkpoint


def summarise(values: list[float]) -> dict:
    return {
        "mean": statistics.mean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "runs": values,
    }


def plot(curves: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    panels = (
        ("disc_auc", "held-out discriminator AUC (ELECTRA)"),
        ("gen_accuracy|mlm_accuracy", "held-out masked-token accuracy"),
        ("hidden_spread", "held-out hidden-state spread (collapse: -> 0)"),
    )
    for ax, (keys, title) in zip(axes, panels):
        for name, run in curves.items():
            for key in keys.split("|"):
                points = [(c["pflops"], c[key]) for c in run if key in c]
                if points:
                    xs, ys = zip(*points)
                    label = f"{name} ({'generator' if key == 'gen_accuracy' else key})"
                    ax.plot(xs, ys, marker="o", label=label if "|" in keys else name)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("pre-training PFLOPs")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(out: dict) -> str:
    """The fine-tuning table and the pre-training end points, as in the README."""
    tasks = [("sst2", "SST-2-like, full (acc.)"), ("sst2_1k", "SST-2-like, 1,000 ex. (acc.)"),
             ("wnut", "WNUT-16 (entity F1)")]  # fmt: skip
    starts = ["random init", *out["pretraining"]]
    lines = ["| start | " + " | ".join(t for _, t in tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for start in starts:
        cells = []
        for task, _ in tasks:
            r = out["finetuning"].get(task, {}).get(start)
            cells.append(f"{100 * r['mean']:.1f} ± {100 * r['sd']:.1f}" if r else "not run")
        lines.append(f"| {start} | " + " | ".join(cells) + " |")
    lines += ["", "| pre-training | steps | PFLOPs | held-out end point | hidden spread (start -> end) |",
              "|---|---|---|---|---|"]  # fmt: skip
    for name, run in out["pretraining"].items():
        objective = "mlm" if name == "MLM" else "electra"
        final = run["final_eval"]
        point = (
            f"MLM accuracy {final['mlm_accuracy']:.3f}"
            if objective == "mlm"
            else f"disc AUC {final['disc_auc']:.3f}, generator accuracy {final['gen_accuracy']:.3f}"
        )
        start = (run.get("start_eval") or {}).get("hidden_spread")
        spread = (
            f"{start:.2f} -> {final['hidden_spread']:.2f}"
            if start
            else f"{final['hidden_spread']:.2f}"
        )
        pflops = run["steps"] * out["step_flops"][objective] / 1e15
        lines.append(f"| {name} | {run['steps']} | {pflops:.2f} | {point} | {spread} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of every stage")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--pretrain_steps", type=int, default=None)
    parser.add_argument("--num_layers", type=int, default=4)
    parser.add_argument("--hidden_size", type=int, default=128)
    parser.add_argument("--generator_fraction", type=float, default=0.25)
    parser.add_argument("--pretrain_lr", type=float, default=1e-3)
    # One fine-tuning recipe for every start point. The paper's Small recipe
    # (lr 3e-4, layer-wise decay 0.8) suits encoders pre-trained for a million
    # steps; after a few thousand it starves the lower layers (SST-2-like 1k,
    # one seed: 57.3% with it, 66.6% at 1e-3 without decay, same checkpoint).
    parser.add_argument("--finetune_lr", type=float, default=1e-3)
    parser.add_argument("--random_init_lr", type=float, default=1e-3)
    parser.add_argument("--layerwise_lr_decay", type=float, default=1.0)
    parser.add_argument(
        "--electra_variants",
        default='{"ELECTRA": {"disc_weight": 100}}',
        help="JSON: name -> extra PretrainOptions of each ELECTRA run to compare, e.g. "
        '\'{"ELECTRA": {}, "ELECTRA no sharing": {"embedding_sharing": "none"}}\'',
    )
    # Task-adaptive pre-training (Gururangan et al. 2020) runs many epochs over
    # the task's own unlabelled text. Ten copies packed into full sequences (35%
    # of the tokens) did not help at this budget (docs/pretraining.md), so the
    # default stays one copy, one sentence per sequence.
    parser.add_argument(
        "--in_domain_repeats",
        type=int,
        default=1,
        help="copies of the SST-2-like training sentences (text only) in the pre-training text",
    )
    parser.add_argument(
        "--pack_documents",
        action="store_true",
        help="pack short documents into full sequences (build_pretraining_data's option)",
    )
    parser.add_argument(
        "--vocab",
        default=DEFAULT_VOCAB,
        help="WordPiece vocab for every model (uncased); e.g. a smaller one from "
        "data_prep.build_vocab on the pre-training text",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work_dir", default=None)
    parser.add_argument("--out", default=os.path.join(HERE, "results_learning.json"))
    parser.add_argument("--plot", default=os.path.join(HERE, "learning_curves.png"))
    parser.add_argument(
        "--render", action="store_true", help="only print the tables of an existing --out file"
    )
    args = parser.parse_args()
    if args.render:
        with open(args.out) as f:
            print(markdown(json.load(f)))
        return
    if not os.path.isdir(SHARED):
        sys.exit(f"shared data not found at {SHARED} (set ELECTRA_SHARED_DATA)")
    sys.path.insert(0, REPO)
    from electra_tf.config import ElectraConfig

    budget = QUICK if args.quick else FULL
    if args.seeds:
        budget = dataclasses.replace(budget, seeds=args.seeds)
    if args.pretrain_steps:
        budget = dataclasses.replace(budget, pretrain_steps=args.pretrain_steps)
    variants = json.loads(args.electra_variants)
    work = args.work_dir or tempfile.mkdtemp(prefix="electra-learning-")
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    from electra_tf.vocab import Vocab

    data = prepare_data(work, budget, args.in_domain_repeats, args.pack_documents, args.vocab)
    config = ElectraConfig.from_preset(
        "small",
        vocab_size=Vocab.load(args.vocab).size,
        num_layers=args.num_layers,
        hidden_size=args.hidden_size,
        num_heads=max(1, args.hidden_size // 64),
        intermediate_size=4 * args.hidden_size,
        embedding_size=128,
        generator_fraction=args.generator_fraction,
        max_position_embeddings=budget.seq_len,
    )
    masked = int(round(0.15 * budget.seq_len)) * budget.batch
    flops = {
        objective: step_flops(config, objective, budget.batch, budget.seq_len, masked)
        for objective in ("electra", "mlm")
    }
    mlm_steps = int(round(budget.pretrain_steps * flops["electra"] / flops["mlm"]))
    runs = {
        name: pretrain(work, name, config, "electra", budget.pretrain_steps, budget, args, extra)
        for name, extra in variants.items()
    }
    runs["MLM"] = pretrain(work, "MLM", config, "mlm", mlm_steps, budget, args, {})
    for name, run in runs.items():
        for point in run["curve"]:
            point["pflops"] = point["step"] * flops["mlm" if name == "MLM" else "electra"] / 1e15
    starts = {"random init": None, **{name: run["model_dir"] for name, run in runs.items()}}
    epochs = {"sst2": budget.sst_epochs, "sst2_1k": budget.subset_epochs, "wnut": budget.ner_epochs}
    scores: dict[str, dict] = {}
    for task, data_dir in data.items():
        for name, init in starts.items():
            values = [
                finetune(work, data_dir, init, config, seed, epochs[task], args)
                for seed in range(budget.seeds)
            ]
            scores.setdefault(task, {})[name] = summarise(values)
            print(f"{task:8s} {name:12s} {summarise(values)}", flush=True)
    with open(os.path.join(SHARED, "sst2_like", "dev.tsv"), encoding="utf-8") as f:
        dev_labels = [line.rstrip("\n").split("\t")[-1] for line in list(f)[1:] if line.strip()]
    majority = max(dev_labels.count("0"), dev_labels.count("1")) / len(dev_labels)
    out = {
        "budget": dataclasses.asdict(budget),
        "model": config.to_dict(),
        "electra_variants": variants,
        "vocab": {"file": os.path.abspath(args.vocab), "size": config.vocab_size},
        "in_domain_repeats": args.in_domain_repeats,
        "pack_documents": args.pack_documents,
        "learning_rates": {
            "pretrain": args.pretrain_lr,
            "finetune_pretrained": args.finetune_lr,
            "finetune_random_init": args.random_init_lr,
            "layerwise_lr_decay": args.layerwise_lr_decay,
        },
        "step_flops": flops,
        "pretraining": {
            k: {kk: vv for kk, vv in v.items() if kk != "model_dir"} for k, v in runs.items()
        },
        "finetuning": scores,
        "sst2_dev_majority_class": majority,
        "metrics": {"sst2": "accuracy", "sst2_1k": "accuracy", "wnut": "entity F1"},
        "seconds": time.time() - t0,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    plot({k: v["curve"] for k, v in runs.items()}, args.plot)
    print(markdown(out))
    print(f"wrote {args.out} and {args.plot} in {out['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
