"""Helpers several test files share (a module, so Bazel's per-file targets can use it)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment a test runs a process in: quiet TensorFlow, the repo
    importable, this interpreter first on PATH (as `python`), no cluster
    (TF_CONFIG) and the console filter on."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    for name in ("TF_CONFIG", "ELECTRA_TF_VERBOSE"):
        env.pop(name, None)
    env.update(extra)
    return env


def python_command(*args) -> list[str]:
    """`python args...` with this interpreter."""
    return [sys.executable, *map(str, args)]


def run_python(*args, env: dict[str, str] | None = None, **kwargs):
    """Runs `python args...` (from the repo root unless `cwd` is given) to the
    end; returns the CompletedProcess with text stdout/stderr."""
    kwargs.setdefault("cwd", REPO)
    return subprocess.run(
        python_command(*args),
        capture_output=True,
        text=True,
        env=env or cli_env(),
        **kwargs,
    )


def start_python(*args, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    """Starts `python args...` from the repo root, stdout/stderr piped as text."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(
        python_command(*args), cwd=REPO, text=True, env=env or cli_env(), **kwargs
    )


def run_cli(module: str, *args, env: dict[str, str] | None = None, **kwargs):
    """Runs `python -m module args...` (an entry point) to the end."""
    return run_python("-m", module, *args, env=env, **kwargs)


def tiny_pretrain_options(data_dir, model_dir, **overrides):
    """A 20-step `tiny` pre-training run on the length-64 test shards in `data_dir`."""
    from electra_tf.config import ElectraConfig
    from electra_tf.pretraining.job import PretrainOptions

    config = ElectraConfig.from_preset("tiny", vocab_size=30522, max_position_embeddings=64)
    base = dict(
        config=config,
        train_data=f"{data_dir}/pretrain-*",
        model_dir=str(model_dir),
        max_seq_length=64,
        train_batch_size=16,
        eval_batch_size=16,
        num_train_steps=20,
        learning_rate=1e-3,
        warmup_steps=5,
        log_every_steps=5,
        save_checkpoints_steps=10,
        shuffle_buffer=200,
        seed=3,
    )
    base.update(overrides)
    return PretrainOptions(**base)
