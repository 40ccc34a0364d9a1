"""The learning study (benchmarks/learning.py) end to end at its toy budget:
every stage runs, the protocol picks each learning rate on validation and
reports dev, the fine-tuning runs are `electra_tf.finetune`'s, and a rerun
resumes instead of redoing."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, cli_env

pytestmark = pytest.mark.slow

SCRIPT = os.path.join(REPO, "benchmarks", "learning.py")


def _study(work, out, png, shared):
    command = [sys.executable, SCRIPT, "--toy", f"--work_dir={work}", f"--out={out}",
               f"--plot={png}"]  # fmt: skip
    env = cli_env(ELECTRA_SHARED_DATA=str(shared))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(out) as f:
        return json.load(f), done.stdout


def _results(work):
    folder = os.path.join(work, "results")
    return {
        name: os.stat(os.path.join(folder, name)).st_mtime_ns
        for name in os.listdir(folder)
        if name.endswith(".json")
    }


@pytest.fixture(scope="module")
def toy(shared_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("learning")
    work, out, png = base / "work", base / "out.json", base / "out.png"
    result, stdout = _study(work, out, png, shared_data)
    return work, out, png, result, stdout, shared_data


def test_every_stage_reports(toy):
    work, _, png, out, stdout, _ = toy
    study = out["study"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name, objective in (("ELECTRA", "disc_auc"), ("MLM", "mlm_accuracy")):
        run = out["pretraining"][name]
        assert len(run["steps"]) == len(study["budgets"])
        assert run["curve"] and all(objective in point for point in run["curve"])
        assert run["tokens_seen"] > 0 and run["epochs_over_corpus"] > 0
    # Each objective trains at its own rate, as the study records it.
    rates = dict(study["pretrain_lr"])
    assert rates["electra"] != rates["mlm"]
    for objective in ("electra", "mlm"):
        with open(work / f"pretrain_{objective}" / "pretrain_options.json") as f:
            assert json.load(f)["learning_rate"] == rates[objective]
    # Equal FLOPs: MLM's steps cost what ELECTRA's do.
    assert out["pretraining"]["MLM"]["pflops"] == pytest.approx(
        out["pretraining"]["ELECTRA"]["pflops"], rel=0.03
    )
    checks = out["recipe_checks"]
    for name in ("ELECTRA", "ELECTRA, dropout", "ELECTRA, generator_third"):
        assert "disc_auc" in checks[name], name
        for task in study["curve_tasks"]:  # fine-tuned beside the main run's tower
            assert checks[name]["finetuning"][task]["dev"]["runs"], (name, task)
    # A wider generator costs more per step; the variants' cells are not in the curve table.
    assert checks["ELECTRA, generator_third"]["step_flops"] > checks["ELECTRA"]["step_flops"]
    assert not any("electra_" in start for cells in out["finetuning"].values() for start in cells)
    largest = [f"electra-{study['budgets'][-1]}", f"mlm-{out['pretraining']['MLM']['steps'][-1]}"]
    for task, _ in study["epochs"]:
        assert {"random", *largest} <= set(out["finetuning"][task]), task
        assert task in out["crossover"]
    smallest = f"electra-{study['budgets'][0]}"
    assert smallest in out["finetuning"]["sst2_100"]  # the curve task at every budget
    assert "| ELECTRA 40 steps |" in stdout and "| random init |" in stdout


def test_the_rate_is_chosen_on_validation_and_dev_is_reported(toy):
    work, _, _, out, _, _ = toy
    study = out["study"]
    for task, by_start in out["finetuning"].items():
        for start, cell in by_start.items():
            sweep = cell["sweep"]
            assert len(sweep) == (1 if start == "random" or task.startswith("probe") else 2)
            runs = {}
            for name in os.listdir(os.path.join(work, "results")):
                if name.startswith(f"{task}__{start}__") and name.endswith(".json"):
                    with open(os.path.join(work, "results", name)) as f:
                        r = json.load(f)
                    runs.setdefault(r["run"]["lr"], []).append(r)
            swept = {
                lr: statistics.mean(r["validation"] for r in rs if r["run"]["seed"] < 1)
                for lr, rs in runs.items()
            }
            assert cell["lr"] == max(sorted(swept), key=swept.get)  # ties: the smaller rate
            chosen = sorted(runs[cell["lr"]], key=lambda r: r["run"]["seed"])
            assert len(chosen) == study["seeds"]  # every seed at the chosen rate
            assert cell["dev"]["runs"] == [r["dev"] for r in chosen]
            assert cell["dev"]["mean"] == pytest.approx(statistics.mean(cell["dev"]["runs"]))


def test_runs_use_the_finetune_command_flags(toy):
    """The recorded command line of a run is valid for python -m electra_tf.finetune."""
    from absl import flags

    from electra_tf import flags as electra_flags

    electra_flags.define_finetune_flags()
    out = toy[3]
    for flag in out["example_finetune_flags"]:
        name = flag.lstrip("-").split("=")[0]
        name = name[2:] if name.startswith("no") and name[2:] in flags.FLAGS else name
        assert name in flags.FLAGS, flag
    assert "--freeze_encoder" not in out["example_finetune_flags"]


def test_a_rerun_resumes_and_redoes_only_what_is_missing(toy):
    work, out_path, png, out, _, shared = toy
    before = _results(work)
    lost = sorted(before)[0]
    os.remove(os.path.join(work, "results", lost))
    again, _ = _study(work, out_path, png, shared)
    after = _results(work)
    assert set(after) == set(before)
    redone = {name for name in after if after[name] != before[name]}
    assert redone == {lost}
    assert again["finetuning"] == out["finetuning"]  # the same seeds give the same numbers


@pytest.fixture
def learning(monkeypatch):
    spec = importlib.util.spec_from_file_location("learning", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "learning", module)  # its dataclasses look it up
    spec.loader.exec_module(module)
    return module


def test_crossover_is_measured_or_read_off_the_fit(learning):
    baseline = {"mean": 0.60, "sd": 0.01}  # the bar is 0.62
    rising = [(0.05, 0.50, 0.01), (0.1, 0.53, 0.01), (0.2, 0.56, 0.01)]
    c = learning.crossover(rising, baseline)
    assert c["kind"] == "extrapolated from 3 budgets"
    # 0.03 a doubling: 0.62 is two doublings past 0.2 PFLOPs.
    assert c["pflops"] == pytest.approx(0.8)
    assert c["times_largest"] == pytest.approx(4.0)
    fit = c["fit"]
    assert fit["intercept"] + fit["slope_per_decade"] * math.log10(c["pflops"]) == pytest.approx(
        c["bar"]
    )
    measured = learning.crossover([*rising, (0.4, 0.66, 0.01)], baseline)
    assert measured == {"pflops": 0.4, "kind": "measured", "bar": pytest.approx(0.62)}
    # Above the bar on the mean but not clear of its own noise: no line is
    # fitted past a budget that already reaches the bar.
    noisy = learning.crossover([*rising, (0.4, 0.63, 0.03)], baseline)
    assert noisy["pflops"] == 0.4 and noisy["kind"] == "mean above, not by 2 of its own sd"
    falling = learning.crossover([(0.05, 0.56, 0.01), (0.2, 0.55, 0.01)], baseline)
    assert falling["pflops"] is None and falling["kind"] == "not rising over 2 budgets"


def test_fine_tuning_skips_cells_whose_towers_are_still_pretraining(learning, tmp_path):
    """A core freed by pre-training fine-tunes what is ready: a cell whose
    towers are not kept yet waits, the cells after it run, and the study is
    not done while it waits."""
    study = learning.TOY
    order = [
        c for tier in learning.cells(study, {"electra": [10, 40], "mlm": [11, 44]}) for c in tier
    ]
    results = tmp_path / "results"
    results.mkdir()
    waiting = order[0][1]
    run, pending = learning._next_run(study, order, str(results), lambda start: start != waiting)
    assert (run.task, run.start) == next(c for c in order if c[1] != waiting) and pending
    assert learning._next_run(study, order, str(results), lambda start: False) == (None, True)
    # Ready means kept whole: pretrain() moves a tower in with its "done" file.
    assert learning.tower_ready(str(tmp_path), "random")
    assert not learning.tower_ready(str(tmp_path), "electra-40")
    (tmp_path / "towers" / "electra-40").mkdir(parents=True)
    assert not learning.tower_ready(str(tmp_path), "electra-40")
    (tmp_path / "towers" / "electra-40" / "done").write_text("40\n")
    assert learning.tower_ready(str(tmp_path), "electra-40")


def test_layer_probe_reads_every_layer_of_the_kept_towers(toy):
    work, _, _, out, _, shared = toy
    path = work / "layer_probe.json"
    command = [sys.executable, os.path.join(REPO, "benchmarks", "layer_probe.py"),
               f"--work_dir={work}", f"--out={path}"]  # fmt: skip
    done = subprocess.run(command, env=cli_env(ELECTRA_SHARED_DATA=str(shared)),
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    probes = json.loads(path.read_text())["probes"]
    study = out["study"]
    budgets = [f"electra-{n}" for n in study["budgets"]]
    assert {"random", *budgets} <= set(probes)  # random init and every kept tower
    for start, tasks in probes.items():
        layers = tasks["probe_sst2"]
        # The embeddings' output, then each layer.
        assert len(layers) == study["num_layers"] + 1, start
        for layer in layers:
            assert layer["c"] in (0.1, 1.0)
            # Two classes: a probe whose predictions are scored at all is
            # near chance or better, never near 0.
            assert 0.3 < layer["dev"] <= 1.0, (start, layer)
    assert "| linear probe, SST-2-like (acc.) | layer 0 | layer 1 |" in done.stdout


def test_layer_probe_scores_tokens_back_in_their_sentences(learning):
    """A probe's per-word predictions are scored as the tagging task scores
    whole sentences: perfect logits give entity F1 1, and unlabelled pieces
    (word continuations, padding) are not scored."""
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    import layer_probe

    from electra_tf.tasks import get_task

    info = {"kind": "tagging", "labels": ["O", "B-person", "I-person"], "main_metric": "entity_f1"}
    label_ids = np.array([[-1, 1, 2, -1, 0, -1], [-1, 0, 1, -1, -1, -1]])
    gold = label_ids[label_ids != -1]
    logits = np.eye(3, dtype=np.float32)[gold]
    split = {"label_ids": label_ids}
    task = get_task("tagging")
    assert layer_probe.score(task, info, split, logits, tokens=True) == 1.0
    wrong = logits.copy()
    wrong[0] = np.eye(3)[0]  # "O I-person": a one-word person, not the gold two-word one
    assert layer_probe.score(task, info, split, wrong, tokens=True) == pytest.approx(0.5)
