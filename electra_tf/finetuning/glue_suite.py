"""The GLUE suite with the paper's protocol: every task, several seeds, medians.

`run_glue(GlueOptions(...))` prepares each task's records from GLUE's own
directory layout (`<glue_dir>/CoLA/train.tsv`, `.../MNLI/dev_matched.tsv`,
...), fine-tunes it once per seed, scores the final checkpoint of each run,
and writes a table of per-task medians in the paper's metrics:

    <output_dir>/data/<task>/                records (build_finetuning_data)
    <output_dir>/runs/<task>/seed-<n>/       one fine-tuning run (its model_dir)
    <output_dir>/glue_results.json, .md      medians, spreads, every run, average

A rerun skips prepared data and finished runs, and resumes an interrupted
one. `electra_tf.glue` is the CLI.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import statistics
import sys
from typing import Any

from data_prep.build_finetuning_data import Settings, build
from electra_tf.finetuning.job import FinetuneOptions, run_finetuning
from electra_tf.io_utils import atomic_write_json, atomic_write_text
from electra_tf.tasks.info import INFO_FILE

# GLUE's directory names, in the paper's table order.
GLUE_DIRS = {
    "cola": "CoLA",
    "sst-2": "SST-2",
    "mrpc": "MRPC",
    "sts-b": "STS-B",
    "qqp": "QQP",
    "mnli": "MNLI",
    "qnli": "QNLI",
    "rte": "RTE",
    "wnli": "WNLI",
}
# What the table reports per task (metrics.json names), the first one averaged.
REPORTED = {
    "cola": ("mcc",),
    "sts-b": ("spearman", "pearson"),
    "mrpc": ("accuracy", "f1"),
    "qqp": ("accuracy", "f1"),
    "mnli": ("accuracy", "dev_mismatched_accuracy"),
}
# The paper's GLUE score leaves WNLI out (its dev set is adversarial).
NOT_AVERAGED = ("wnli",)
DONE_FILE = "done.json"


@dataclasses.dataclass(kw_only=True)
class GlueOptions:
    """A GLUE suite run.

    `finetune` holds every fine-tuning option (learning rate, batch size,
    --init_checkpoint or a random-init config, ...); its data_dir, model_dir
    and seed are set per run.
    """

    glue_dir: str
    output_dir: str
    vocab: str
    finetune: FinetuneOptions
    tasks: tuple[str, ...] | None = None  # None: every task found in glue_dir
    seeds: int = 5
    first_seed: int = 1
    max_seq_length: int = 128
    lower_case: bool = True

    def validate(self) -> None:
        if self.seeds <= 0:
            raise ValueError(f"--seeds must be positive, got {self.seeds}")
        unknown = sorted(set(self.tasks or ()) - set(GLUE_DIRS))
        if unknown:
            raise ValueError(
                f"--tasks: unknown GLUE task(s) {', '.join(unknown)}; "
                f"choose from {', '.join(GLUE_DIRS)}"
            )
        if not os.path.isdir(self.glue_dir):
            raise ValueError(f"--glue_dir={self.glue_dir} is not a directory")

    def selected_tasks(self) -> list[str]:
        if self.tasks:
            missing = [
                t
                for t in self.tasks
                if not os.path.isdir(os.path.join(self.glue_dir, GLUE_DIRS[t]))
            ]
            if missing:
                paths = ", ".join(os.path.join(self.glue_dir, GLUE_DIRS[t]) for t in missing)
                raise ValueError(f"--tasks: no such directory: {paths}")
            return list(self.tasks)
        found = [t for t in GLUE_DIRS if os.path.isdir(os.path.join(self.glue_dir, GLUE_DIRS[t]))]
        if not found:
            raise ValueError(
                f"--glue_dir={self.glue_dir} holds none of GLUE's task directories "
                f"({', '.join(GLUE_DIRS.values())})"
            )
        return found


def prepare(options: GlueOptions, task: str, stream) -> str:
    """The task's records (built once; a rerun reuses them)."""
    out = os.path.join(options.output_dir, "data", task)
    if not os.path.exists(os.path.join(out, INFO_FILE)):
        print(f"[{task}] preparing records in {out}", file=stream, flush=True)
        settings = Settings(
            task,
            os.path.join(options.glue_dir, GLUE_DIRS[task]),
            out,
            options.vocab,
            max_seq_length=options.max_seq_length,
            lower_case=options.lower_case,
        )
        build(settings, stream=io.StringIO())
    return out


def run_one(options: GlueOptions, task: str, data_dir: str, seed: int, stream) -> dict | None:
    """One seed of one task: its final evaluation (a finished run is read, not
    rerun); None if the run was preempted (SIGTERM)."""
    model_dir = os.path.join(options.output_dir, "runs", task, f"seed-{seed}")
    done = os.path.join(model_dir, DONE_FILE)
    if os.path.exists(done):
        with open(done, encoding="utf-8") as f:
            return json.load(f)
    print(f"[{task}] seed {seed}: fine-tuning in {model_dir}", file=stream, flush=True)
    run = dataclasses.replace(options.finetune, data_dir=data_dir, model_dir=model_dir, seed=seed)
    history = run_finetuning(run, stream=io.StringIO())
    if history.get("preempted"):
        return None
    final = dict(history["final"], seed=seed)
    atomic_write_json(done, final)
    return final


def summarize(task: str, runs: list[dict]) -> dict[str, Any]:
    """Median, standard deviation and range of each reported metric (x100)."""
    summary: dict[str, Any] = {"task": task, "seeds": [r["seed"] for r in runs], "metrics": {}}
    for metric in REPORTED.get(task, ("accuracy",)):
        values = [100.0 * r[metric] for r in runs if metric in r]
        if not values:
            continue
        summary["metrics"][metric] = {
            "median": statistics.median(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
            "runs": values,
        }
    return summary


def glue_score(summaries: list[dict]) -> float | None:
    """The mean of each averaged task's first reported metric's median (WNLI left out)."""
    values = [
        s["metrics"][REPORTED.get(s["task"], ("accuracy",))[0]]["median"]
        for s in summaries
        if s["task"] not in NOT_AVERAGED
    ]
    return statistics.mean(values) if values else None


def markdown(summaries: list[dict], score: float | None, seeds: int) -> str:
    lines = [
        f"GLUE dev results: median over {seeds} seed(s) of the final checkpoint "
        "(sd; min-max), x100.",
        "",
        "| task | metric | median | sd | min-max |",
        "|---|---|---|---|---|",
    ]
    for s in summaries:
        for metric, m in s["metrics"].items():
            lines.append(
                f"| {s['task']} | {metric} | {m['median']:.1f} | {m['sd']:.1f} | "
                f"{m['min']:.1f}-{m['max']:.1f} |"
            )
    if score is not None:
        lines += [
            "",
            f"GLUE average: **{score:.1f}** (CoLA MCC, STS-B Spearman, MNLI matched and "
            "accuracy elsewhere; WNLI not averaged).",
        ]
    return "\n".join(lines) + "\n"


def run_glue(options: GlueOptions, stream=sys.stdout) -> dict[str, Any]:
    """Every selected task x seed; writes and returns the results table."""
    options.validate()
    tasks = options.selected_tasks()
    os.makedirs(options.output_dir, exist_ok=True)
    summaries = []
    for task in tasks:
        data_dir = prepare(options, task, stream)
        seeds = range(options.first_seed, options.first_seed + options.seeds)
        runs = []
        for seed in seeds:
            run = run_one(options, task, data_dir, seed, stream)
            if run is None:
                print(f"[{task}] seed {seed} preempted: rerun to resume", file=stream)
                return {"preempted": True}
            runs.append(run)
        summaries.append(summarize(task, runs))
        shown = ", ".join(f"{k} {v['median']:.1f}" for k, v in summaries[-1]["metrics"].items())
        print(f"[{task}] median of {len(runs)}: {shown}", file=stream, flush=True)
    score = glue_score(summaries)
    results = {
        "tasks": summaries,
        "glue_average": score,
        "seeds": options.seeds,
        "preempted": False,
    }
    atomic_write_json(os.path.join(options.output_dir, "glue_results.json"), results)
    table = markdown(summaries, score, options.seeds)
    atomic_write_text(os.path.join(options.output_dir, "glue_results.md"), table)
    print(table, file=stream, flush=True)
    return results
