r"""The learning study: where does pre-training start to pay at this scale?

    python benchmarks/learning.py                  # the study; a rerun resumes it
    python benchmarks/learning.py --toy            # every stage at a toy budget (~1 min)
    python benchmarks/learning.py --render         # the tables of the committed JSON

One ELECTRA run and one MLM run (the same encoder, equal pre-training FLOPs)
are taken to the largest budget; their towers are kept at each budget on
the way (one learning-rate schedule per objective, so the earlier budgets
are points on the way, not separately annealed runs). Every start (random
init and each kept tower) is fine-tuned on each task with its own
learning-rate sweep and several seeds (a core that pre-training frees
works on the towers already kept), through `run_finetuning`, the job
`python -m electra_tf.finetune` runs (the flags of each run are in the
JSON). The learning rate is chosen on a validation split carved from the
training file; the number reported is the held-out dev set's, at the final
step, mean +- sd over the seeds at that rate.

Everything is kept under --work_dir: the data, the pre-training model dirs,
the towers at each budget and one result file per fine-tuning run. Stopping
(Ctrl-C, a kill, a crash) loses at most the runs in flight: a rerun skips
what is done and resumes pre-training from its last checkpoint.

Writes benchmarks/results_learning.json and benchmarks/learning_curves.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import io
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
from electra_tf.io_utils import atomic_write_json, atomic_write_text  # noqa: E402

SHARED = os.environ.get("ELECTRA_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
# The pre-training text: every shared corpus but the held-out one, and the
# training files' text of the two tasks (their labels are never read).
CORPUS = ("sotu", "tdavid", "web", "shakespeare", "mobydick")
HELD_OUT = "mhcc"
OBJECTIVES = ("electra", "mlm")
NAMES = {"electra": "ELECTRA", "mlm": "MLM"}
# How far past the largest budget the plot's axis goes to show an extrapolated crossover.
REACH = 100
# Recipe checks: ELECTRA with one Study setting changed, on the same schedule
# to the first budget, fine-tuned there on the curve tasks beside the main
# run (held-out AUC alone cannot rank generators: a stronger one sets the
# discriminator a harder task).
VARIANTS = {"dropout": {"pretrain_dropout": 0.1}, "generator_third": {"generator_fraction": 1 / 3}}


@dataclasses.dataclass(frozen=True)
class Study:
    """Every setting of one study (its JSON records all of them)."""

    corpus: tuple[str, ...] = CORPUS
    # Pre-training (the ELECTRA budgets, in steps; MLM gets equal FLOPs).
    budgets: tuple[int, ...] = (1500, 6000, 24000)
    batch: int = 32
    seq_len: int = 128
    num_layers: int = 4
    hidden_size: int = 128
    generator_fraction: float = 0.25
    vocab_size: int = 16384  # learned on the pre-training text; 0: the shared 30,522 vocab
    pretrain_dropout: float = 0.0
    # Each objective's peak rate. ELECTRA's discriminator stalls at the rate MLM
    # trains well at (docs/results.md has the pilot runs).
    pretrain_lr: tuple[tuple[str, float], ...] = (("electra", 5e-4), ("mlm", 1e-3))
    warmup_steps: int = 600
    eval_every: int = 500
    eval_batches: int = 20
    held_out_chars: int = 2_000_000
    # Fine-tuning.
    finetune_seq_len: int = 64
    finetune_dropout: float = 0.1
    seeds: int = 5
    sweep_seeds: int = 2  # seeds of every rate; the chosen one gets the rest
    sst_validation: int = 500
    wnut_validation: int = 200
    label_counts: tuple[int, ...] = (100, 300, 1000, 0)  # 0: the whole training pool
    epochs: tuple[tuple[str, float], ...] = (
        ("sst2_100", 40.0),
        ("sst2_300", 20.0),
        ("sst2_1000", 10.0),
        ("sst2_full", 2.0),
        ("wnut", 8.0),
        ("probe_sst2", 10.0),
        ("probe_wnut", 8.0),
    )
    lr_random: tuple[float, ...] = (1e-3, 3e-4, 1e-4)
    lr_pretrained: tuple[float, ...] = (1e-3, 3e-4, 1e-4)
    lr_probe: tuple[float, ...] = (1e-2, 3e-3, 1e-3)
    layerwise_lr_decay: float = 0.8
    # Tasks fine-tuned from every budget; the rest from the largest only.
    curve_tasks: tuple[str, ...] = ("sst2_100", "sst2_300", "wnut")
    probe_labels: int = 1000  # the sentence probe's training set (0: the full pool)
    workers: int = 2


FULL = Study()
TOY = Study(
    corpus=("mobydick",),
    budgets=(20, 40),
    batch=8,
    seq_len=32,
    num_layers=1,
    hidden_size=32,
    vocab_size=0,
    warmup_steps=5,
    eval_every=20,
    eval_batches=2,
    held_out_chars=20_000,
    finetune_seq_len=32,
    seeds=2,
    sweep_seeds=1,
    sst_validation=40,
    wnut_validation=20,
    label_counts=(100,),
    epochs=(("sst2_100", 1.0), ("wnut", 0.1), ("probe_sst2", 0.5)),
    lr_random=(1e-3,),
    lr_pretrained=(1e-3, 1e-4),
    lr_probe=(1e-2,),
    curve_tasks=("sst2_100",),
    probe_labels=100,
)

TASK_TITLES = {
    "sst2_100": "SST-2-like, 100 labels (acc.)",
    "sst2_300": "SST-2-like, 300 labels (acc.)",
    "sst2_1000": "SST-2-like, 1,000 labels (acc.)",
    "sst2_full": "SST-2-like, full (acc.)",
    "wnut": "WNUT-16 (entity F1)",
    "probe_sst2": "linear probe, SST-2-like (acc.)",
    "probe_wnut": "linear probe, WNUT-16 tokens (entity F1)",
}


def log(message: str) -> None:
    print(f"[learning {time.strftime('%H:%M:%S')}] {message}", flush=True)


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


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


def _task_text(work: str) -> list[str]:
    """The training files' text of both tasks, one line per sentence/tweet."""
    out = os.path.join(work, "text")
    os.makedirs(out, exist_ok=True)
    sst = os.path.join(out, "sst2_train_text.txt")
    if not os.path.exists(sst):
        with open(os.path.join(SHARED, "sst2_like", "train.tsv"), encoding="utf-8") as f:
            next(f)
            lines = [line.split("\t")[0] + "\n" for line in f if line.strip()]
        atomic_write_text(sst, "".join(lines))
    wnut = os.path.join(out, "wnut_train_text.txt")
    if not os.path.exists(wnut):
        tweets, words = [], []
        with open(os.path.join(SHARED, "ner", "train.conll"), encoding="utf-8") as f:
            for line in list(f) + [""]:
                if line.strip():
                    words.append(line.split("\t")[0])
                elif words:
                    tweets.append(" ".join(words) + "\n")
                    words = []
        atomic_write_text(wnut, "".join(tweets))
    return [sst, wnut]


def prepare_data(work: str, study: Study) -> dict:
    """The vocab, the pre-training shards (train and held-out) and every
    fine-tuning set; each step is skipped when its output is complete."""
    from data_prep.build_finetuning_data import Settings as FinetuneSettings
    from data_prep.build_finetuning_data import build as build_finetuning
    from data_prep.build_pretraining_data import Settings, build

    corpus = [os.path.join(SHARED, "corpus", f"{name}.txt.gz") for name in study.corpus]
    inputs = (*corpus, *_task_text(work))
    vocab = os.path.join(SHARED, "vocab", "uncased_vocab.txt")
    if study.vocab_size:
        vocab = os.path.join(work, f"vocab{study.vocab_size}.txt")
        if not os.path.exists(vocab):
            log(f"learning a {study.vocab_size:,}-piece WordPiece vocab on the pre-training text")
            _run_module("data_prep.build_vocab", input=",".join(inputs),
                        vocab_size=study.vocab_size, output=vocab)  # fmt: skip
    held_out = os.path.join(work, "text", "held_out.txt")
    if not os.path.exists(held_out):
        with gzip.open(os.path.join(SHARED, "corpus", f"{HELD_OUT}.txt.gz"), "rt") as f:
            text = f.read(study.held_out_chars)
        atomic_write_text(held_out, text[: text.rfind(" ")] + "\n")
    common = dict(vocab=vocab, max_seq_length=study.seq_len, masking="none", pack_documents=True)
    pretrain = {}
    for name, sources, shards in (("train", inputs, 8), ("held_out", (held_out,), 1)):
        out = os.path.join(work, f"pretrain_data_{name}")
        if not os.path.exists(os.path.join(out, "dataset_info.json")):
            log(f"pre-training data: {name}")
        info = build(Settings(inputs=tuple(sources), output_dir=out, num_shards=shards, **common),
                     num_workers=2)  # fmt: skip
        pretrain[name] = {"pattern": f"{out}/pretrain-*", "totals": info["totals"]}
    sets = {}
    sst = os.path.join(SHARED, "sst2_like")
    for count in study.label_counts:
        name = f"sst2_{count}" if count else "sst2_full"
        sets[name] = ("sst-2", sst, study.sst_validation, count)
    sets["wnut"] = ("conll", os.path.join(SHARED, "ner"), study.wnut_validation, 0)
    finetune = {}
    for name, (task, input_dir, validation, count) in sets.items():
        out = os.path.join(work, f"ft_data_{name}")
        if not os.path.exists(os.path.join(out, "finetune_info.json")):
            build_finetuning(
                FinetuneSettings(task, input_dir, out, vocab, study.finetune_seq_len,
                                 validation_size=validation, max_train_examples=count),
                io.StringIO(),
            )  # fmt: skip
        finetune[name] = out
    finetune["probe_sst2"] = finetune[
        f"sst2_{study.probe_labels}" if study.probe_labels else "sst2_full"
    ]
    finetune["probe_wnut"] = finetune["wnut"]
    return {"vocab": vocab, "pretrain": pretrain, "finetune": finetune}


def _run_module(module: str, **flags) -> None:
    command = [sys.executable, "-m", module, *(f"--{k}={v}" for k, v in flags.items())]
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)


# --- the model and the budgets ----------------------------------------------------


def model_config(study: Study, vocab_size: int, dropout: float):
    from electra_tf.config import ElectraConfig

    return ElectraConfig.from_preset(
        "small",
        vocab_size=vocab_size,
        num_layers=study.num_layers,
        hidden_size=study.hidden_size,
        num_heads=max(1, study.hidden_size // 64),
        intermediate_size=4 * study.hidden_size,
        embedding_size=min(128, study.hidden_size),
        generator_fraction=study.generator_fraction,
        max_position_embeddings=max(study.seq_len, study.finetune_seq_len),
        dropout=dropout,
    )


def flops_per_step(study: Study, vocab_size: int) -> dict[str, float]:
    config = model_config(study, vocab_size, 0.0)
    masked = int(round(0.15 * study.seq_len)) * study.batch
    return {o: step_flops(config, o, study.batch, study.seq_len, masked) for o in OBJECTIVES}


def budgets(study: Study, flops: dict[str, float]) -> dict[str, list[int]]:
    """Steps at each budget: ELECTRA's, and MLM's at the same FLOPs."""
    ratio = flops["electra"] / flops["mlm"]
    return {"electra": list(study.budgets), "mlm": [int(round(s * ratio)) for s in study.budgets]}


# --- pre-training -----------------------------------------------------------------


def pretrain(work: str, study: Study, data: dict, item: str) -> None:
    """Runs (or resumes) one objective to its largest budget, keeping the
    towers at each budget in towers/<objective>-<steps>/; a recipe check
    ("electra+<variant>") runs to the first budget only."""
    from electra_tf.pretraining.job import PretrainOptions, run_pretraining
    from electra_tf.vocab import Vocab

    objective, _, variant = item.partition("+")
    vocab_size = Vocab.load(data["vocab"]).size
    steps = budgets(study, flops_per_step(study, vocab_size))[objective]
    recipe = dataclasses.replace(study, **VARIANTS[variant]) if variant else study
    config = model_config(recipe, vocab_size, recipe.pretrain_dropout)
    steps_kept = steps[:1] if variant else steps
    model_dir = os.path.join(work, f"pretrain_{objective}" + (f"_{variant}" if variant else ""))
    options = PretrainOptions(
        config=config,
        train_data=data["pretrain"]["train"]["pattern"],
        eval_data=data["pretrain"]["held_out"]["pattern"],
        model_dir=model_dir,
        objective=objective,
        vocab=data["vocab"],
        max_seq_length=study.seq_len,  # the data's and the FLOP budget's: not a variant's to change
        train_batch_size=study.batch,
        eval_batch_size=study.batch,
        num_train_steps=steps[-1],
        learning_rate=dict(recipe.pretrain_lr)[objective],
        warmup_steps=recipe.warmup_steps,
        log_every_steps=study.eval_every,
        eval_every_steps=study.eval_every,
        save_checkpoints_steps=study.eval_every,
        keep_checkpoint_max=2,
        num_eval_steps=study.eval_batches,
        shuffle_buffer=5000,
        seed=1,
        **({"disc_weight": 100} if objective == "electra" else {}),
    )
    for target in steps_kept:
        kept = tower_dir(work, objective + (f"_{variant}" if variant else ""), target)
        if os.path.exists(os.path.join(kept, "done")):
            continue
        at = _checkpoint_step(model_dir)
        if at > target:
            raise RuntimeError(
                f"{model_dir} is at step {at}, past the budget {target} whose towers were not "
                f"kept ({kept}); remove {model_dir} to redo this objective"
            )
        if at < target:
            log(f"{item}: steps {at} -> {target}")
            run_pretraining(
                dataclasses.replace(options, max_steps_per_run=target - at), stream=sys.stdout
            )
            if _checkpoint_step(model_dir) != target:
                raise SystemExit(f"{item} stopped before step {target}; rerun to resume")
        tmp = kept + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for tower in ("discriminator", "generator"):
            if os.path.isdir(os.path.join(model_dir, tower)):
                shutil.copytree(os.path.join(model_dir, tower), os.path.join(tmp, tower))
        with open(os.path.join(tmp, "done"), "w") as f:
            f.write(f"{target}\n")
        shutil.rmtree(kept, ignore_errors=True)
        os.replace(tmp, kept)
        log(f"{item}: towers at step {target} kept in {kept}")


def tower_dir(work: str, objective: str, steps: int) -> str:
    return os.path.join(work, "towers", f"{objective}-{steps}")


def _checkpoint_step(model_dir: str) -> int:
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(model_dir) if os.path.isdir(model_dir) else None
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def pretraining_curve(model_dir: str) -> list[dict]:
    """The held-out eval scalars TensorBoard got, by step (the last write wins)."""
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


# --- fine-tuning ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    """One fine-tuning run: a start, a task, a learning rate, a seed."""

    start: str  # "random" or "<objective>-<steps>"
    task: str
    lr: float
    seed: int

    @property
    def key(self) -> str:
        return f"{self.task}__{self.start}__lr{self.lr:g}__s{self.seed}"


def cells(study: Study, steps: dict[str, list[int]]) -> list[list[tuple[str, str]]]:
    """The (task, start) pairs to fine-tune, in tiers, the most telling first
    (a stopped study has its tiers done in order): the curve tasks at the
    largest budget; the first probe there; the curve tasks at the smallest
    budget (the curve's other end); the other tasks at the largest budget;
    the budgets between; the recipe checks."""
    tasks = [task for task, _ in study.epochs]
    curve = [t for t in tasks if t in study.curve_tasks]
    # The probes first among the rest: cheap, and they say what the encoder holds.
    others = sorted((t for t in tasks if t not in curve), key=lambda t: not t.startswith("probe_"))

    def at(index: int) -> list[str]:
        return [f"{o}-{steps[o][index]}" for o in OBJECTIVES]

    between = [f"{o}-{n}" for o in OBJECTIVES for n in steps[o][1:-1]]
    variants = [f"electra_{v}-{steps['electra'][0]}" for v in VARIANTS]
    tiers = [
        [(t, s) for t in curve for s in ("random", *at(-1))],
        [(t, s) for t in others[:1] for s in ("random", *at(-1))],
        [(t, s) for t in curve for s in at(0)] if len(study.budgets) > 1 else [],
        [(t, s) for t in others[1:] for s in ("random", *at(-1))],
        [(t, s) for t in curve for s in between],
        [(t, s) for s in variants for t in curve],
    ]
    return [tier for tier in tiers if tier]


def sweep_runs(study: Study, tier: list[tuple[str, str]]) -> list[Run]:
    """Every learning rate of each cell, `sweep_seeds` seeds each."""
    return [
        Run(start, task, lr, seed)
        for task, start in tier
        for lr in learning_rates(study, task, start)
        for seed in range(study.sweep_seeds)
    ]


def seed_runs(study: Study, tier: list[tuple[str, str]], results: str) -> list[Run]:
    """The remaining seeds of each cell, at the rate its sweep chose."""
    runs = []
    for task, start in tier:
        sweep = [read_json(os.path.join(results, r.key + ".json"))
                 for r in sweep_runs(study, [(task, start)])]  # fmt: skip
        lr = chosen_lr(sweep)
        runs += [Run(start, task, lr, seed) for seed in range(study.sweep_seeds, study.seeds)]
    return runs


def chosen_lr(sweep: list[dict]) -> float:
    """The rate with the best mean validation score over the sweep's seeds
    (a tie goes to the smaller rate)."""
    by_lr: dict[float, list[float]] = {}
    for r in sweep:
        by_lr.setdefault(r["run"]["lr"], []).append(r["validation"])
    return max(sorted(by_lr), key=lambda lr: statistics.mean(by_lr[lr]))


def learning_rates(study: Study, task: str, start: str) -> tuple[float, ...]:
    if task.startswith("probe_"):
        return study.lr_probe
    return study.lr_random if start == "random" else study.lr_pretrained


def finetune_options(work: str, study: Study, data: dict, run: Run):
    """The options of one run: exactly what `python -m electra_tf.finetune` with
    the flags in `finetune_flags` builds."""
    from electra_tf.finetuning.job import FinetuneOptions
    from electra_tf.vocab import Vocab

    pretrained = run.start != "random"
    probe = run.task.startswith("probe_")
    config = None
    if not pretrained:
        config = model_config(study, Vocab.load(data["vocab"]).size, study.finetune_dropout)
    return FinetuneOptions(
        data_dir=data["finetune"][run.task],
        model_dir=os.path.join(work, "finetune", run.key),
        init_checkpoint=tower_dir(work, *_split_start(run.start)) if pretrained else None,
        config=config,
        dropout=study.finetune_dropout,
        freeze_encoder=probe,
        learning_rate=run.lr,
        layerwise_lr_decay=study.layerwise_lr_decay if pretrained and not probe else 1.0,
        num_train_epochs=dict(study.epochs)[run.task],
        train_batch_size=32,
        seed=run.seed,
        eval_every_epoch=False,
        log_every_steps=100_000,
        save_checkpoints_steps=100_000,
    )


def finetune_flags(options) -> list[str]:
    """The electra_tf.finetune command line of `options` (recorded in the JSON)."""
    flags = []
    for name in ("data_dir", "init_checkpoint", "learning_rate", "layerwise_lr_decay",
                 "num_train_epochs", "train_batch_size", "seed", "dropout"):  # fmt: skip
        value = getattr(options, name)
        if value is not None:
            flags.append(f"--{name}={value}")
    flags += ["--freeze_encoder"] if options.freeze_encoder else []
    flags += ["--noeval_every_epoch"]
    if options.config is not None:
        c = options.config
        overrides = {k: getattr(c, k) for k in ("num_layers", "hidden_size", "num_heads",
                     "intermediate_size", "embedding_size", "max_position_embeddings")}  # fmt: skip
        flags += ["--model_size=small", "--model_overrides=" + json.dumps(overrides)]
    return flags


def _split_start(start: str) -> tuple[str, int]:
    objective, steps = start.rsplit("-", 1)
    return objective, int(steps)


def finetune_one(work: str, study: Study, data: dict, run: Run) -> dict:
    from electra_tf.finetuning.job import run_finetuning

    options = finetune_options(work, study, data, run)
    history = run_finetuning(options, stream=io.StringIO())
    if history.get("preempted"):  # saved where it stopped; the next invocation resumes it
        raise SystemExit(143)
    final = history["final"]  # the final step, never the best
    main = read_json(os.path.join(options.data_dir, "finetune_info.json"))["main_metric"]
    shutil.rmtree(options.model_dir, ignore_errors=True)
    return {
        "run": dataclasses.asdict(run),
        "validation": final[f"validation_{main}"],
        "dev": final[main],
        "steps": final["step"],
    }


def finetune_worker(work: str, study: Study, data: dict, steps: dict[str, list[int]]) -> None:
    """Runs whatever is first in line until every run is done: cell by cell in
    tier order, a cell's sweep, then its remaining seeds once the sweep is in
    (no worker waits for a whole tier, so a stopped study has whole cells). A
    cell whose towers are still pre-training waits; the cells after it go on."""
    results = os.path.join(work, "results")
    order = [cell for tier in cells(study, steps) for cell in tier]
    log(f"fine-tuning {len(order)} (task, start) cells")
    while True:
        run, pending = _next_run(study, order, results, lambda start: tower_ready(work, start))
        if run is None and not pending:
            return
        if run is None:  # the rest waits on sweeps another worker runs, or on towers
            time.sleep(0.5)
            continue
        t0 = time.time()
        result = finetune_one(work, study, data, run)
        result["seconds"] = time.time() - t0
        path = os.path.join(results, run.key + ".json")
        atomic_write_json(path, result)
        os.remove(path + ".claim")


def tower_ready(work: str, start: str) -> bool:
    """Whether a start's towers are kept (pretrain() moves them in whole)."""
    if start == "random":
        return True
    return os.path.exists(os.path.join(tower_dir(work, *_split_start(start)), "done"))


def _next_run(
    study: Study, order: list, results: str, ready: Callable[[str], bool]
) -> tuple[Run | None, bool]:
    """(the first run nobody has claimed that can start, whether any run is
    still not done); the run returned is claimed."""
    pending = False

    def done(run: Run) -> bool:
        return os.path.exists(os.path.join(results, run.key + ".json"))

    for cell in order:
        if not ready(cell[1]):
            pending = True
            continue
        sweep = sweep_runs(study, [cell])
        runs = sweep
        if all(done(r) for r in sweep):
            runs = seed_runs(study, [cell], results)
        for run in runs:
            if done(run):
                continue
            pending = True
            try:
                path = os.path.join(results, run.key + ".json.claim")
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return run, True
            except FileExistsError:
                continue
        if runs is sweep:
            pending = True  # its seeds are still to come
    return None, pending


def run_workers(args, study: Study, pretrain_items: list[str], finetune: bool) -> None:
    """Every pre-training item at once, then fine-tuning workers on the cores
    pre-training frees (`study.workers` in all), each taking the cells whose
    towers are ready; one process per core, one thread each (small models use
    two processes better than one process with two threads)."""
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1",
               OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")  # fmt: skip
    base = [sys.executable, os.path.abspath(__file__), f"--work_dir={args.work_dir}",
            f"--study={args.study}"] + (["--toy"] if args.toy else [])  # fmt: skip

    def launch(stage: str, item: str) -> subprocess.Popen:
        return subprocess.Popen(base + [f"--_stage={stage}", f"--_item={item}"], env=env)

    pretraining = [launch("pretrain", item) for item in pretrain_items]
    finetuning: list[subprocess.Popen] = []
    try:
        while True:
            busy = sum(p.poll() is None for p in pretraining)
            while finetune and len(finetuning) < study.workers - busy:
                finetuning.append(launch("finetune", str(len(finetuning))))
            procs = pretraining + finetuning
            codes = [p.poll() for p in procs]
            if any(codes):  # a failed worker stops the rest (they would wait for it)
                for p in procs:
                    if p.poll() is None:
                        p.terminate()
                codes = [p.wait() for p in procs]
                raise SystemExit(f"a study worker failed (exit {codes}); rerun to resume")
            if None not in codes:  # fine-tuning workers are launched by now if wanted
                return
            time.sleep(0.5)
    except KeyboardInterrupt:
        for p in pretraining + finetuning:
            p.send_signal(signal.SIGINT)
        for p in pretraining + finetuning:
            p.wait()
        raise


# --- the report -------------------------------------------------------------------


def summarise(values: list[float]) -> dict:
    return {
        "mean": statistics.mean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "runs": values,
    }


def select(results: list[dict], sweep_seeds: int) -> dict:
    """Per (task, start): the learning rate the sweep chose (`chosen_lr` on
    the first `sweep_seeds` seeds), and the dev scores of all its seeds."""
    by_cell: dict[tuple[str, str], dict[float, list[dict]]] = {}
    for r in results:
        run = r["run"]
        by_cell.setdefault((run["task"], run["start"]), {}).setdefault(run["lr"], []).append(r)
    table: dict[str, dict] = {}
    for (task, start), by_lr in by_cell.items():
        sweep = {
            f"{lr:g}": {
                "validation": summarise([r["validation"] for r in rs]),
                "dev": summarise([r["dev"] for r in rs]),
            }
            for lr, rs in sorted(by_lr.items())
        }
        best = f"{chosen_lr([r for rs in by_lr.values() for r in rs if r['run']['seed'] < sweep_seeds]):g}"
        table.setdefault(task, {})[start] = {
            "lr": float(best),
            "dev": sweep[best]["dev"],
            "validation": sweep[best]["validation"],
            "sweep": sweep,
        }
    return table


def crossover(points: list[tuple[float, float, float]], baseline: dict) -> dict:
    """Where a pre-trained start's mean passes random init's mean + 2 sd.

    points: (pflops, mean, sd) by budget. Measured when a budget passes it
    by more than 2 of its own sd too; the first budget whose mean alone
    passes, labelled so; else where the least-squares line through every
    budget's mean in log(FLOPs) reaches it, labelled extrapolated (None when
    it does not rise).
    """
    bar = baseline["mean"] + 2 * baseline["sd"]
    for pflops, mean, sd in points:
        if mean - 2 * sd > baseline["mean"] and mean > bar:
            return {"pflops": pflops, "kind": "measured", "bar": bar}
    for pflops, mean, _ in points:
        if mean > bar:  # a line fitted past this point would say nothing more
            return {"pflops": pflops, "kind": "mean above, not by 2 of its own sd", "bar": bar}
    if len(points) < 2:
        return {"pflops": None, "kind": "not enough budgets", "bar": bar}
    xs = [math.log10(p[0]) for p in points]
    ys = [p[1] for p in points]
    slope, intercept = statistics.linear_regression(xs, ys)
    if slope <= 0:
        return {"pflops": None, "kind": f"not rising over {len(points)} budgets", "bar": bar}
    at = 10 ** ((bar - intercept) / slope)
    return {"pflops": at, "kind": f"extrapolated from {len(points)} budgets", "bar": bar,
            "times_largest": at / max(p[0] for p in points),
            "fit": {"slope_per_decade": slope, "intercept": intercept}}  # fmt: skip


def report(work: str, study: Study, data: dict) -> dict:
    from electra_tf.vocab import Vocab

    vocab_size = Vocab.load(data["vocab"]).size
    flops = flops_per_step(study, vocab_size)
    steps = budgets(study, flops)
    results_dir = os.path.join(work, "results")
    results, not_run = [], []
    for tier in cells(study, steps):
        for cell in tier:
            runs = sweep_runs(study, [cell])
            if all(os.path.exists(os.path.join(results_dir, r.key + ".json")) for r in runs):
                runs += seed_runs(study, [cell], results_dir)
            paths = [os.path.join(results_dir, r.key + ".json") for r in runs]
            if all(os.path.exists(p) for p in paths):  # a cell stopped half-way is left out
                results += [read_json(p) for p in paths]
            else:
                not_run.append(list(cell))
    table = select(results, study.sweep_seeds)
    pflops = {f"{o}-{s}": s * flops[o] / 1e15 for o in OBJECTIVES for s in steps[o]}
    pretraining = {}
    train_tokens = data["pretrain"]["train"]["totals"]["tokens_written"]
    for objective in OBJECTIVES:
        curve = pretraining_curve(os.path.join(work, f"pretrain_{objective}"))
        for point in curve:
            point["pflops"] = point["step"] * flops[objective] / 1e15
        seen = steps[objective][-1] * study.batch * study.seq_len
        pretraining[NAMES[objective]] = {
            "steps": steps[objective],
            "pflops": [pflops[f"{objective}-{s}"] for s in steps[objective]],
            "tokens_seen": seen,
            "epochs_over_corpus": seen / train_tokens,
            "curve": curve,
        }
        if objective == "electra" and curve:
            # What the discriminator's held-out loss is to be read against.
            pretraining[NAMES[objective]]["base_rate_disc_loss"] = base_rate_loss(
                curve[-1].get("replaced_fraction", 0.0)
            )
    first = steps["electra"][0]
    main_at_first = next((c for c in pretraining["ELECTRA"]["curve"] if c["step"] == first), {})
    recipe = {"step": first, "ELECTRA": {"step_flops": flops["electra"], **_held_out(main_at_first),
              "finetuning": {t: table.get(t, {}).get(f"electra-{first}") for t in study.curve_tasks}}}  # fmt: skip
    for variant, change in VARIANTS.items():
        curve = pretraining_curve(os.path.join(work, f"pretrain_electra_{variant}"))
        at = next((c for c in curve if c["step"] == first), {})
        variant_flops = flops_per_step(dataclasses.replace(study, **change), vocab_size)
        recipe[f"ELECTRA, {variant}"] = {
            "change": change,
            "step_flops": variant_flops["electra"],
            **_held_out(at),
            # Its cells come out of the budget-curve table.
            "finetuning": {
                t: table.get(t, {}).pop(f"electra_{variant}-{first}", None)
                for t in study.curve_tasks
            },  # fmt: skip
        }
    crossovers = {}
    for task in table:
        if "random" not in table[task]:  # a partial --report
            continue
        base = table[task]["random"]["dev"]
        for objective in OBJECTIVES:
            points = [(pflops[s], table[task][s]["dev"]["mean"], table[task][s]["dev"]["sd"])
                      for s in table[task] if s.startswith(objective + "-")]  # fmt: skip
            crossovers.setdefault(task, {})[NAMES[objective]] = crossover(sorted(points), base)
    example = finetune_options(work, study, data, Run(f"electra-{steps['electra'][-1]}",
                                                      "sst2_100", study.lr_pretrained[0], 0))  # fmt: skip
    return {
        "study": dataclasses.asdict(study),
        "machine": _machine(),
        "vocab": {"size": vocab_size, "learned": bool(study.vocab_size)},
        "pretraining_text": data["pretrain"]["train"]["totals"],
        "step_flops": flops,
        "pretraining": pretraining,
        "recipe_checks": recipe,
        "finetuning": table,
        "cells_not_run": not_run,
        "finetuning_runs": len(results),
        "finetuning_seconds": sum(r.get("seconds", 0.0) for r in results),
        "crossover": crossovers,
        "pflops_of_start": pflops,
        "example_finetune_flags": finetune_flags(example),
        "metrics": {t: TASK_TITLES[t] for t in table},
    }


def _held_out(point: dict) -> dict:
    keys = ("disc_auc", "disc_loss", "replaced_fraction", "gen_accuracy", "hidden_spread")
    return {k: point[k] for k in keys if k in point}


def base_rate_loss(p: float) -> float:
    """The replaced-token loss of a discriminator that knows only the share p
    of replaced tokens (the entropy of that base rate, in nats)."""
    return -(p * math.log(p) + (1 - p) * math.log(1 - p)) if 0 < p < 1 else 0.0


def _machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {"cpu": model, "cores": os.cpu_count()}


def start_order(start: str) -> tuple:
    """How tables list starts: random init, then by objective and budget."""
    if start == "random":
        return ("", 0)
    return _split_start(start)


def start_label(start: str) -> str:
    if start == "random":
        return "random init"
    objective, steps = _split_start(start)
    objective, _, variant = objective.partition("_")  # a recipe check: electra_<variant>
    return f"{NAMES[objective]}{', ' + variant if variant else ''} {steps:,} steps"


def _score(cell: dict) -> str:
    """A cell's dev score as shown: mean ± sd over seeds, in percent."""
    return f"{100 * cell['dev']['mean']:.1f} ± {100 * cell['dev']['sd']:.1f}"


def markdown(out: dict) -> str:
    """The budget-curve table: each task's dev score (mean ± sd over seeds at
    the learning rate chosen on validation) by start."""
    table = out["finetuning"]
    tasks = [t for t in TASK_TITLES if t in table]
    all_starts = sorted({s for t in tasks for s in table[t]}, key=start_order)
    lines = ["| start | PFLOPs | " + " | ".join(TASK_TITLES[t] for t in tasks) + " |",
             "|---" * (len(tasks) + 2) + "|"]  # fmt: skip
    for start in all_starts:
        cells = []
        for task in tasks:
            cell = table[task].get(start)
            cells.append(f"{_score(cell)} ({cell['lr']:g})" if cell else "—")
        pf = out["pflops_of_start"].get(start, 0.0)
        lines.append(f"| {start_label(start)} | {pf:.2f} | " + " | ".join(cells) + " |")
    lines += ["", "| pre-training | steps | PFLOPs | tokens seen | epochs | held-out end point |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for name, run in out["pretraining"].items():
        final = run["curve"][-1] if run["curve"] else {}
        point = (f"MLM accuracy {final.get('mlm_accuracy', float('nan')):.3f}" if name == "MLM"
                 else f"disc AUC {final.get('disc_auc', float('nan')):.3f}, disc loss "
                 f"{final.get('disc_loss', float('nan')):.3f} (base rate "
                 f"{run.get('base_rate_disc_loss', float('nan')):.3f}), generator accuracy "
                 f"{final.get('gen_accuracy', float('nan')):.3f}")  # fmt: skip
        lines.append(f"| {name} | {run['steps'][-1]:,} | {run['pflops'][-1]:.2f} | "
                     f"{run['tokens_seen'] / 1e6:.1f} M | {run['epochs_over_corpus']:.1f} | {point} |")  # fmt: skip
    checks = out.get("recipe_checks", {})
    if checks:
        curve = [t for t in TASK_TITLES if t in checks["ELECTRA"].get("finetuning", {})]
        header = [f"recipe at step {checks['step']:,}", "GFLOPs/step", "held-out disc AUC",
                  "generator accuracy", *(TASK_TITLES[t] for t in curve)]  # fmt: skip
        lines += ["", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        for name, point in checks.items():
            if name == "step":
                continue
            row = [name, f"{point.get('step_flops', float('nan')) / 1e9:.1f}",
                   f"{point.get('disc_auc', float('nan')):.3f}",
                   f"{point.get('gen_accuracy', float('nan')):.3f}"]  # fmt: skip
            for task in curve:
                cell = point.get("finetuning", {}).get(task)
                row.append(_score(cell) if cell else "not run")
            lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "| task | start | random init + 2 sd | crosses at (PFLOPs) |",
        "|---|---|---|---|",
    ]
    for task in tasks:
        for name, c in out["crossover"].get(task, {}).items():
            where = c["kind"]
            if "times_largest" in c:
                # A line through a few noisy points says little far beyond them.
                times = c["times_largest"]
                times = f"{times:,.1f}" if times < 10 else f"{times:,.0f}"
                where = f"{c['pflops']:,.2f} ({c['kind']}, {times}× the largest run)"
            elif c["pflops"]:
                where = f"{c['pflops']:.2f} ({c['kind']})"
            lines.append(f"| {TASK_TITLES[task]} | {name} | {100 * c['bar']:.1f} | {where} |")
    return "\n".join(lines)


def plot(out: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    # Every panel on the same axis, ticked at the budgets (a log axis spanning
    # one point would be ticked at random sub-decades) and at the extrapolated
    # crossovers it reaches; the axis goes on to those within REACH of the
    # largest budget (a line drawn 1,000x past its data says nothing).
    ticks = out["pretraining"]["ELECTRA"]["pflops"]
    low = min([ticks[0]] + [c["pflops"] for r in out["pretraining"].values() for c in r["curve"]])
    fits = [c for cs in out["crossover"].values() for c in cs.values() if "fit" in c]
    reached = sorted(c["pflops"] for c in fits if c["pflops"] <= ticks[-1] * REACH)
    high = max([ticks[-1], *reached])
    # A crossover within a factor of ~1.8 of a budget would print over its tick.
    labelled = [r for r in reached if all(abs(math.log10(r / t)) > 0.25 for t in ticks)]
    tasks = [t for t in TASK_TITLES if t in out["finetuning"]]
    panels = [("pretrain", None)] + [("task", t) for t in tasks]
    cols = 4
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, (kind, task) in zip(axes.flat, panels):
        ax.set_xscale("log")
        ax.set_xlim(low / 1.3, high * 1.3)
        ax.set_xticks([*ticks, *labelled])
        ax.xaxis.set_major_formatter(FormatStrFormatter("%.2g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("pre-training PFLOPs")
        ax.grid(alpha=0.3)
        if kind == "pretrain":
            for name, run in out["pretraining"].items():
                for key in ("disc_auc", "gen_accuracy", "mlm_accuracy"):
                    pts = [(c["pflops"], c[key]) for c in run["curve"] if key in c and c["pflops"]]
                    if pts:
                        ax.plot(*zip(*pts), marker=".", label=f"{name} {key}")
            ax.set_title("held-out pre-training metrics", fontsize=9)
        else:
            cells = out["finetuning"][task]
            base = cells["random"]["dev"]
            ax.axhline(base["mean"], color="grey", label="random init")
            ax.axhspan(base["mean"] - 2 * base["sd"], base["mean"] + 2 * base["sd"],
                       color="grey", alpha=0.2)  # fmt: skip
            for objective in OBJECTIVES:
                pts = sorted((out["pflops_of_start"][s], c["dev"]["mean"], c["dev"]["sd"])
                             for s, c in cells.items() if s.startswith(objective + "-"))  # fmt: skip
                if not pts:
                    continue
                xs, ys, sds = zip(*pts)
                line = ax.errorbar(xs, ys, yerr=sds, marker="o", capsize=3,
                                   label=NAMES[objective])  # fmt: skip
                c = out["crossover"].get(task, {}).get(NAMES[objective], {})
                if "fit" in c:  # the least-squares line the crossover is read from
                    end = min(c["pflops"], high * 1.3)
                    fx = [xs[0], end]
                    fy = [c["fit"]["intercept"] + c["fit"]["slope_per_decade"] * math.log10(x)
                          for x in fx]  # fmt: skip
                    ax.plot(fx, fy, linestyle="--", color=line[0].get_color(), alpha=0.7,
                            label=f"{NAMES[objective]} fit, extrapolated")  # fmt: skip
                    if c["pflops"] <= end:
                        ax.plot([c["pflops"]], [c["bar"]], marker="x", markersize=9,
                                color=line[0].get_color())  # fmt: skip
            ax.set_title(TASK_TITLES[task], fontsize=9)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# --- the command ------------------------------------------------------------------


def _as_field(value):
    """JSON lists as the tuples Study's fields are."""
    if isinstance(value, list):
        return tuple(_as_field(v) for v in value)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--toy", action="store_true", help="every stage at a toy budget")
    parser.add_argument("--work_dir", default=None,
                        help="where the study keeps everything (default: ~/.cache/electra-tf-"
                        "learning[-toy]); a rerun with the same one resumes")  # fmt: skip
    parser.add_argument(
        "--out", default=None, help="the JSON (default: benchmarks/results_learning.json)"
    )
    parser.add_argument(
        "--plot", default=None, help="the PNG (default: benchmarks/learning_curves.png)"
    )
    parser.add_argument("--stop_after", choices=("data", "pretrain", "finetune"), default=None,
                        help="stop after this stage (a later rerun goes on)")  # fmt: skip
    parser.add_argument("--study", default="{}",
                        help='JSON of Study fields to change, e.g. \'{"budgets": [6000, 24000]}\' '
                        "(a study with other settings needs its own --work_dir)")  # fmt: skip
    parser.add_argument("--render", action="store_true", help="only print the tables of --out")
    parser.add_argument("--report", action="store_true",
                        help="only write --out and --plot from the runs --work_dir has done so far")  # fmt: skip
    parser.add_argument("--_stage", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_item", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    suffix = "-toy" if args.toy else ""
    args.work_dir = os.path.abspath(
        args.work_dir or os.path.expanduser(f"~/.cache/electra-tf-learning{suffix}")
    )
    out_path = args.out or os.path.join(HERE, "results_learning.json")
    plot_path = args.plot or os.path.join(HERE, "learning_curves.png")
    if args.render:
        print(markdown(read_json(out_path)))
        return
    if not os.path.isdir(SHARED):
        sys.exit(f"shared data not found at {SHARED} (set ELECTRA_SHARED_DATA)")
    sys.path.insert(0, REPO)
    study = TOY if args.toy else FULL
    try:
        changes = json.loads(args.study)
        study = dataclasses.replace(study, **{k: _as_field(v) for k, v in changes.items()})
    except (ValueError, TypeError) as e:
        sys.exit(f"--study: {e}")
    work = args.work_dir
    os.makedirs(os.path.join(work, "results"), exist_ok=True)
    settings_file = os.path.join(work, "study.json")
    if os.path.exists(settings_file) and read_json(settings_file) != json.loads(
        json.dumps(dataclasses.asdict(study))
    ):
        sys.exit(
            f"{work} holds a study with other settings ({settings_file}); use another --work_dir"
        )
    if args._stage:
        data = read_json(os.path.join(work, "data.json"))
        if args._stage == "pretrain":
            pretrain(work, study, data, args._item)
        else:
            from electra_tf.vocab import Vocab

            steps = budgets(study, flops_per_step(study, Vocab.load(data["vocab"]).size))
            finetune_worker(work, study, data, steps)
        return
    if args.report:
        _write_report(work, study, read_json(os.path.join(work, "data.json")), out_path, plot_path)
        return
    atomic_write_json(settings_file, dataclasses.asdict(study))
    data = prepare_data(work, study)
    atomic_write_json(os.path.join(work, "data.json"), data)
    if args.stop_after == "data":
        return
    for name in os.listdir(os.path.join(work, "results")):
        if name.endswith(".claim"):  # runs in flight when the last invocation stopped
            os.remove(os.path.join(work, "results", name))
    log(f"pre-training both objectives to {study.budgets[-1]:,} ELECTRA steps (equal FLOPs)")
    pretrain_items = [*OBJECTIVES, *(f"electra+{v}" for v in VARIANTS)]
    run_workers(args, study, pretrain_items, finetune=args.stop_after != "pretrain")
    if args.stop_after in ("pretrain", "finetune"):
        return
    _write_report(work, study, data, out_path, plot_path)


def _write_report(work: str, study: Study, data: dict, out_path: str, plot_path: str) -> None:
    out = report(work, study, data)
    atomic_write_json(out_path, out)
    plot(out, plot_path)
    print(markdown(out))
    log(f"wrote {out_path} and {plot_path}")


if __name__ == "__main__":
    main()
