"""README's commands work as printed.

Every shell block of README.md is extracted: each command must be valid
shell (no `[--optional]` brackets that the shell reads as a pipe or a glob),
every flag it passes must be a flag of that command, and the fast ones run
for real in a scratch directory laid out as README assumes (a small corpus in
`corpus/`, SST-2-like data in `glue/SST-2`, a fine-tuned model in
`runs/sst2/final`, `/models` as a local folder). The Python block runs too.
"""

from __future__ import annotations

import gzip
import os
import re
import shlex
import shutil
import subprocess

import pytest
from helpers import REPO, cli_env, run_python

FIXTURE = REPO / "tests" / "fixtures" / "legacy_4f51619"
TAKES_TEXTS = ("electra_tf.fill_mask",)  # commands with positional arguments
BLOCK = re.compile(r"```(bash|python)\n(.*?)```", re.S)
# Run for real: quick on a small corpus or a tiny model.
FAST = (
    "data_prep.build_vocab",
    "data_prep.build_pretraining_data",
    "data_prep.build_finetuning_data",
    "electra_tf.export",
    "electra_tf.tflite",
    "electra_tf.convert --to=hf",
    "electra_tf.convert --to=keras_hub",
)


def readme_blocks(kind: str) -> list[str]:
    return [body for lang, body in BLOCK.findall((REPO / "README.md").read_text()) if lang == kind]


def shell_commands() -> list[str]:
    """Each command of README's shell blocks, continuation lines joined,
    comments and the set-up (`make`) lines left out."""
    commands = []
    for block in readme_blocks("bash"):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith(("#", "make ")):
                commands.append(line)
    return commands


def _flags_of(module: str) -> set[str]:
    out = run_python("-m", module, "--helpfull").stdout
    return set(re.findall(r"--(?:\[no\])?(\w+)", out))


def test_readme_has_commands_for_every_stage():
    modules = {shlex.split(c)[2] for c in shell_commands() if c.startswith("python -m ")}
    assert {
        "data_prep.build_vocab",
        "data_prep.build_pretraining_data",
        "electra_tf.pretrain",
        "data_prep.build_finetuning_data",
        "electra_tf.finetune",
        "electra_tf.convert",
        "electra_tf.export",
        "electra_tf.tflite",
    } <= modules


@pytest.mark.parametrize("command", shell_commands())
def test_each_command_is_valid_shell_with_known_flags(command):
    check = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "[--" not in command and "|" not in command.split("'")[0], command
    words = shlex.split(command)
    if words[:2] != ["python", "-m"]:
        assert words[0] == "curl", command
        return
    known = _flags_of(words[2])
    for word in words[3:]:
        if words[2] in TAKES_TEXTS and not word.startswith("-"):
            continue  # the texts, after the flags
        name = word[2:].split("=", 1)[0]
        assert word.startswith("--") and name in known, f"{word}: not a flag of {words[2]}"


@pytest.fixture(scope="module")
def readme_dir(tmp_path_factory, shared_data):
    """A scratch directory laid out as README's commands expect."""
    root = tmp_path_factory.mktemp("readme")
    (root / "corpus").mkdir()
    with gzip.open(shared_data / "corpus" / "mobydick.txt.gz", "rt", encoding="utf-8") as f:
        text = f.read(400_000)
    with gzip.open(root / "corpus" / "moby.txt.gz", "wt", encoding="utf-8") as f:
        f.write(text[: text.rfind("\n") + 1])
    (root / "glue").mkdir()
    shutil.copytree(shared_data / "sst2_like", root / "glue" / "SST-2")
    (root / "runs" / "sst2").mkdir(parents=True)
    shutil.copytree(FIXTURE / "classifier", root / "runs" / "sst2" / "final")
    shutil.copytree(FIXTURE / "pretrain", root / "runs" / "small")
    shutil.copy(FIXTURE / "vocab.txt", root / "runs" / "small" / "vocab.txt")
    return root


def _local(command: str, root) -> str:
    """README's `/models` is a server path: here a folder of the scratch directory."""
    return command.replace("/models/", f"{root}/models/")


def test_the_fast_commands_run_as_printed(readme_dir):
    ran = []
    for command in shell_commands():
        if not any(command.startswith(f"python -m {fast}") for fast in FAST):
            continue
        r = subprocess.run(
            _local(command, readme_dir),
            shell=True,
            cwd=readme_dir,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert r.returncode == 0, f"{command}\n{r.stderr[-2000:]}"
        ran.append(shlex.split(command)[2])
    assert len(ran) == len(FAST)
    assert (readme_dir / "vocab.txt").exists()
    assert (readme_dir / "data" / "pretrain" / "dataset_info.json").exists()
    assert (readme_dir / "data" / "sst2" / "finetune_info.json").exists()
    assert (readme_dir / "models" / "sst2" / "1" / "saved_model.pb").exists()
    assert (readme_dir / "edge" / "sst2.tflite").exists()
    assert (readme_dir / "hf_out" / "discriminator" / "config.json").exists()
    assert (readme_dir / "hf_out" / "generator" / "config.json").exists()
    assert (readme_dir / "keras_hub_preset" / "tokenizer.json").exists()

    # The Python block: loading the export needs no import besides the package.
    (python_block,) = readme_blocks("python")
    script = readme_dir / "readme_snippet.py"
    script.write_text(_local(python_block, readme_dir))
    r = run_python(script, cwd=readme_dir)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "probabilities" in r.stdout and "labels" in r.stdout
    assert os.path.exists(readme_dir / "models" / "sst2" / "1")
