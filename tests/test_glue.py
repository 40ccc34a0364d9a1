"""The GLUE suite runner and the reference protocol it applies, on a small local
directory in GLUE's own layout (no ../shared/data)."""

from __future__ import annotations

import io
import json

import pytest
from helpers import run_cli

from data_prep.build_finetuning_data import Settings, build
from electra_tf.checkpoints import save_tower
from electra_tf.config import ElectraConfig
from electra_tf.finetuning.glue_suite import GlueOptions, glue_score, run_glue, summarize
from electra_tf.finetuning.job import FinetuneOptions
from electra_tf.modeling import ElectraDiscriminator

QUIET = io.StringIO()


@pytest.fixture(scope="module")
def tower(glue_vocab, tmp_path_factory) -> str:
    """A (randomly initialised) tiny discriminator saved as pre-training saves it."""
    with open(glue_vocab) as f:
        size = sum(1 for _ in f)
    config = ElectraConfig.from_preset("tiny", vocab_size=size, max_position_embeddings=32)
    model = ElectraDiscriminator(config)
    model.build()
    out = tmp_path_factory.mktemp("tower") / "discriminator"
    save_tower(model, config, str(out))
    return str(out)


def test_mrpc_and_sts_b_train_on_both_pair_orders(glue_dir, glue_vocab, tmp_path):
    for task, directory in (("mrpc", "MRPC"), ("sts-b", "STS-B"), ("rte", "RTE")):
        info = build(
            Settings(task, str(glue_dir / directory), str(tmp_path / task), glue_vocab, 32),
            stream=QUIET,
        )
        doubled = task in ("mrpc", "sts-b")
        assert info["double_unordered"] is doubled
        assert info["splits"]["train"]["features"] == (48 if doubled else 24)
        assert info["splits"]["dev"]["features"] == 8  # never doubled
        assert info["default_epochs"] == (10.0 if task in ("sts-b", "rte") else 3.0)
    with pytest.raises(ValueError, match="--double_unordered needs a pair task"):
        build(
            Settings("sst-2", str(glue_dir / "SST-2"), str(tmp_path / "s"), glue_vocab, 32,
                     double_unordered=True),
            stream=QUIET,
        )  # fmt: skip


def test_summary_medians_and_the_glue_average():
    runs = [{"seed": s, "mcc": v} for s, v in ((1, 0.5), (2, 0.1), (3, 0.3))]
    cola = summarize("cola", runs)
    assert cola["metrics"]["mcc"]["median"] == pytest.approx(30.0)
    assert cola["metrics"]["mcc"]["min"] == pytest.approx(10.0)
    rte = summarize("rte", [{"seed": 1, "accuracy": 0.6}])
    wnli = summarize("wnli", [{"seed": 1, "accuracy": 0.1}])
    assert glue_score([cola, rte, wnli]) == pytest.approx(45.0)  # WNLI not averaged


def test_suite_runs_every_task_and_seed_and_a_rerun_skips_them(
    glue_dir, glue_vocab, tower, tmp_path
):
    options = GlueOptions(
        glue_dir=str(glue_dir),
        output_dir=str(tmp_path / "glue"),
        vocab=glue_vocab,
        tasks=("mrpc", "mnli", "sts-b"),
        seeds=2,
        max_seq_length=32,
        finetune=FinetuneOptions(
            data_dir="",
            model_dir="",
            init_checkpoint=tower,
            num_train_epochs=1,
            train_batch_size=8,
            learning_rate=1e-3,
            log_every_steps=1000,
        ),
    )
    results = run_glue(options, stream=QUIET)
    by_task = {t["task"]: t for t in results["tasks"]}
    assert list(by_task) == ["mrpc", "mnli", "sts-b"]
    assert set(by_task["mrpc"]["metrics"]) == {"accuracy", "f1"}
    assert set(by_task["mnli"]["metrics"]) == {"accuracy", "dev_mismatched_accuracy"}
    assert set(by_task["sts-b"]["metrics"]) == {"spearman", "pearson"}
    assert all(t["seeds"] == [1, 2] for t in results["tasks"])
    assert results["glue_average"] == pytest.approx(
        (
            by_task["mrpc"]["metrics"]["accuracy"]["median"]
            + by_task["mnli"]["metrics"]["accuracy"]["median"]
            + by_task["sts-b"]["metrics"]["spearman"]["median"]
        )
        / 3
    )
    run = tmp_path / "glue" / "runs" / "mrpc" / "seed-2"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["reported"] == "final" and len(metrics["evaluations"]) == 1
    assert (tmp_path / "glue" / "glue_results.md").read_text().count("| mrpc |") == 2
    # Rerun: nothing retrains; the table is the same.
    stamp = (run / "metrics.json").stat().st_mtime_ns
    again = run_glue(options, stream=QUIET)
    assert again["tasks"] == results["tasks"]
    assert (run / "metrics.json").stat().st_mtime_ns == stamp


def test_cli_refuses_a_missing_task_directory(glue_dir, glue_vocab, tmp_path):
    result = run_cli(
        "electra_tf.glue", f"--glue_dir={glue_dir}", f"--output_dir={tmp_path}",
        f"--vocab={glue_vocab}", "--tasks=qqp", "--model_size=tiny",
    )  # fmt: skip
    assert result.returncode == 2
    assert "--tasks: no such directory" in result.stderr and "QQP" in result.stderr
