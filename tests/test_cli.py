"""Every command line behaves the same way: its own flags in --help, grouped
by stage and shown without loading TensorFlow; bad input exits 2 with one
line that names the flag or file."""

from __future__ import annotations

import re

import pytest
from helpers import run_cli, run_python

COMMANDS = {
    "electra_tf.pretrain": "--train_data",
    "electra_tf.finetune": "--data_dir",
    "electra_tf.glue": "--glue_dir",
    "electra_tf.export": "--checkpoint",
    "electra_tf.tflite": "--saved_model",
    "electra_tf.convert": "--input",
    "data_prep.build_vocab": "--input",
    "data_prep.build_pretraining_data": "--input",
    "data_prep.build_finetuning_data": "--task",
    "data_prep.builtin_corpus": "--output",
}
TRAINING_STAGES = ("data", "model", "optimisation", "checkpoints", "evaluation", "distribution")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_lists_the_commands_own_flags_without_loading_tensorflow(command):
    r = run_python("-X", "importtime", "-m", command, "--help")
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"  {COMMANDS[command]} " in r.stdout and "(required)" in r.stdout
    imported = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "keras", "torch")}
    # Nothing from the libraries' own flag sets (absltest, TPU, Model Garden).
    assert "test_srcdir" not in r.stdout and "tpu_" not in r.stdout
    assert "Try --helpfull" not in r.stdout


@pytest.mark.parametrize("command", ["electra_tf.pretrain", "electra_tf.finetune"])
def test_training_help_is_grouped_by_stage_and_offers_no_refused_choice(command):
    out = run_cli(command, "--help").stdout
    headings = re.findall(r"^(\w+):$", out, re.M)
    assert headings == [s for s in TRAINING_STAGES if s in headings]
    assert {"data", "optimisation", "checkpoints", "distribution"} <= set(headings)
    stage = {}
    for line in out.splitlines():
        if re.fullmatch(r"\w+:", line):
            current = line[:-1]
        elif line.startswith("  --"):
            stage[line.split()[0]] = current
    assert stage["--model_dir"] == "checkpoints" and stage["--learning_rate"] == "optimisation"
    assert stage["--distribution_strategy"] == "distribution"
    assert "parameter_server" not in out  # refused by the strategy factory: not offered


def _one_error_line(r):
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    return lines[0]


def test_bad_flags_exit_2_with_one_line(tmp_path):
    line = _one_error_line(run_cli("electra_tf.export", "--no_such_flag=1"))
    assert "no_such_flag" in line
    line = _one_error_line(run_cli("electra_tf.export"))
    assert "--checkpoint, --export_dir required" in line
    line = _one_error_line(run_cli("data_prep.build_vocab", "--input=a", "--output=b", "extra"))
    assert "unexpected arguments: extra" in line


def test_a_flagfile_typo_names_the_flagfile(tmp_path):
    outer, inner = tmp_path / "outer.flags", tmp_path / "inner.flags"
    inner.write_text("--model_size=tiny\n--num_train_stepz=5\n")
    outer.write_text(f"--flagfile={inner}\n--seed=1\n")
    line = _one_error_line(
        run_cli("electra_tf.pretrain", f"--flagfile={outer}", "--train_data=x", "--model_dir=y")
    )
    assert "num_train_stepz" in line and f"in the flagfile {inner}" in line


def test_paths_of_the_wrong_kind_are_refused_before_any_work(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for command, flag in [
        ("electra_tf.pretrain", "--model_dir"),
        ("electra_tf.finetune", "--model_dir"),
        ("data_prep.build_pretraining_data", "--output_dir"),
    ]:
        others = [f"{f}=x" for f in ("--train_data", "--data_dir", "--input", "--vocab")]
        known = [a for a in others if a.split("=")[0] + " " in run_cli(command, "--help").stdout]
        line = _one_error_line(run_cli(command, f"{flag}={a_file}", *known))
        assert f"{flag} is an existing file" in line
    line = _one_error_line(run_cli("data_prep.build_vocab", "--input=x", f"--output={tmp_path}"))
    assert "--output is an existing directory" in line
