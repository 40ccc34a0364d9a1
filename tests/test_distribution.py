"""Strategies and fault tolerance (CPU only, loopback only, bounded time)."""

import io
import json
import pathlib
import signal
import socket
import time

import numpy as np
import pytest
import tensorflow as tf
from helpers import REPO, cli_env, start_python

from electra_tf.distribute import get_strategy

JOB = REPO / "tests" / "distributed_job.py"


def _options(data_dir, model_dir, **overrides):
    base = dict(
        config={
            "preset": "tiny",
            "vocab_size": 30522,
            "max_position_embeddings": 64,
            "dropout": 0.0,
        },
        train_data=f"{data_dir}/pretrain-*",
        model_dir=str(model_dir),
        max_seq_length=64,
        train_batch_size=16,
        num_train_steps=12,
        learning_rate=1e-3,
        warmup_steps=3,
        log_every_steps=4,
        save_checkpoints_steps=4,
        shuffle_buffer=100,
        seed=5,
    )
    base.update(overrides)
    return base


def _start(options, out_npz, *args, **env):
    return start_python(JOB, json.dumps(options), out_npz, *args, env=cli_env(**env))


def _finish(proc, timeout=400):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _assert_same_weights(
    a_npz, b_npz, rtol=2e-4, atol=2e-5, min_variables=50, embedding_outliers=0.002, lr_steps=0.0
):
    """Every variable equal within rtol/atol, except in the token embedding
    table: there a row whose gradient sums contributions that nearly cancel
    (summed in another order on 2 replicas) can take Adam steps of another
    sign, since Adam normalises each step to about the learning rate. At
    most `embedding_outliers` of its elements may differ, each by at most
    `lr_steps` (learning rate x steps); a wrong loss scale or a missed
    all-reduce moves every element instead."""
    a, b = np.load(a_npz), np.load(b_npz)
    assert sorted(a.files) == sorted(b.files) and len(a.files) > min_variables
    for name in a.files:
        if name.endswith("token_embedding/embeddings") and lr_steps:
            off = ~np.isclose(a[name], b[name], rtol=rtol, atol=atol)
            assert off.mean() <= embedding_outliers, (name, off.mean())
            assert np.abs(a[name] - b[name]).max() <= lr_steps, name
            continue
        np.testing.assert_allclose(a[name], b[name], rtol=rtol, atol=atol, err_msg=name)


def _assert_pretraining_matches(default_npz, mirrored_npz):
    """The weights of `_options`' 12 pre-training steps (lr 1e-3) on one and on
    two replicas. Per-replica batches are matrices of other shapes, for which
    oneDNN may pick other kernels: where it runs AVX2-class ones (an Intel
    Xeon with AMX but no avx512f, measured) their rounding grew to 2.4e-4, a
    quarter of one step. A wrong normalisation moves the losses (compared at
    rtol 1e-4) and every weight by whole steps."""
    _assert_same_weights(default_npz, mirrored_npz, atol=5e-4, lr_steps=12e-3)


def test_mirrored_over_two_cpus_matches_the_default_strategy(masked_data, tmp_path):
    default = _start(_options(masked_data, tmp_path / "default"), tmp_path / "default.npz")
    mirrored = _start(
        _options(masked_data, tmp_path / "mirrored", distribution_strategy="mirrored"),
        tmp_path / "mirrored.npz",
        "--logical_cpus=2",
    )
    a, b = _finish(default), _finish(mirrored)
    assert a["step"] == b["step"] == 12
    for key in ("loss", "gen_loss", "disc_loss", "replaced_fraction"):
        np.testing.assert_allclose(a["train"][key], b["train"][key], rtol=1e-4, err_msg=key)
    _assert_pretraining_matches(tmp_path / "default.npz", tmp_path / "mirrored.npz")


def test_a_non_finite_step_on_one_replica_is_skipped_on_every_replica(masked_data, tmp_path):
    default = _start(
        _options(masked_data, tmp_path / "default"), tmp_path / "default.npz", "--nan_at_steps=5"
    )
    mirrored = _start(
        _options(masked_data, tmp_path / "mirrored", distribution_strategy="mirrored"),
        tmp_path / "mirrored.npz",
        "--logical_cpus=2",
        "--nan_at_steps=5",
    )
    a, b = _finish(default), _finish(mirrored)
    assert a["skipped_steps"] == b["skipped_steps"] == 1
    assert a["step"] == b["step"] == 12
    _assert_pretraining_matches(tmp_path / "default.npz", tmp_path / "mirrored.npz")
    assert all(np.isfinite(v).all() for v in np.load(tmp_path / "mirrored.npz").values())


def test_mirrored_with_xla_and_bfloat16(masked_data, tmp_path):
    # XLA compiles only the forward+backward pass (no collectives inside), so it
    # composes with MirroredStrategy on CPU (docs/pitfalls.md: a jitted step would not).
    run = _start(
        _options(
            masked_data,
            tmp_path / "m",
            distribution_strategy="mirrored",
            num_train_steps=4,
            log_every_steps=2,
            save_checkpoints_steps=4,
            jit_compile=True,
            mixed_precision="bfloat16",
        ),
        tmp_path / "m.npz",
        "--logical_cpus=2",
    )
    result = _finish(run)
    assert result["step"] == 4 and np.isfinite(result["train"]["loss"])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_workers(options, out_prefix, count=2, args=(), **env):
    """Starts `count` MultiWorkerMirrored workers on 127.0.0.1; worker i writes out_prefix{i}.npz."""
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(count)]
    procs = []
    for index in range(count):
        tf_config = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        )
        procs.append(_start(options, f"{out_prefix}{index}.npz", *args, TF_CONFIG=tf_config, **env))
    return procs


def test_multi_worker_mirrored_on_loopback(masked_data, tmp_path):
    # The generator-only objective with dropout off makes the result independent
    # of which replica holds which row, so MWMS (records sharded over workers)
    # must match one process on the same global batch.
    data = tmp_path / "one_shard"
    data.mkdir()
    src = sorted(pathlib.Path(masked_data).glob("pretrain-*.tfrecord"))[0]
    (data / "pretrain-copy.tfrecord").write_bytes(src.read_bytes())  # no dataset_info.json
    common = dict(
        disc_weight=0.0,
        shuffle_buffer=1,
        num_train_steps=6,
        log_every_steps=3,
        save_checkpoints_steps=3,
    )
    single = _start(_options(data, tmp_path / "single", **common), tmp_path / "single.npz")
    _finish(single)

    tmp = tmp_path / "worker_tmp"
    tmp.mkdir()
    procs = _start_workers(
        _options(data, tmp_path / "mwms", distribution_strategy="multi_worker_mirrored", **common),
        tmp_path / "worker",
        TMPDIR=str(tmp),
    )
    results = [_finish(p) for p in procs]
    assert all(r["step"] == 6 for r in results)
    _assert_same_weights(tmp_path / "worker0.npz", tmp_path / "worker1.npz", rtol=0, atol=0)
    _assert_same_weights(tmp_path / "single.npz", tmp_path / "worker0.npz")
    # Only the chief wrote into model_dir; the other worker's temp dir is gone.
    ckpts = sorted(p.name for p in (tmp_path / "mwms").glob("ckpt-*.index"))
    assert ckpts == ["ckpt-3.index", "ckpt-6.index"]
    assert not list(tmp.glob("electra_worker_*")), "the non-chief's checkpoint dir was not removed"


def _cli(module, *args):
    """Starts `python -m module args...` in the repo, output captured as text."""
    return start_python("-m", module, *args)


def _wait_for_step(proc, step, timeout=300):
    deadline = time.time() + timeout
    for line in proc.stdout:
        if line.startswith("step") and int(line.split()[1].split("/")[0]) >= step:
            return
        assert time.time() < deadline, "no progress"
    raise AssertionError(f"the run ended before step {step}")


def _latest_step(model_dir):
    return int(tf.train.latest_checkpoint(str(model_dir)).rsplit("-", 1)[1])


def _assert_resumed_run_matches(resumed, tmp_path, stopped, final, rtol, atol):
    """The rerun resumed from `stopped` and its `final` checkpoint equals the
    uninterrupted run's (tmp_path/straight), every variable (rtol=atol=0: bit for bit)."""
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-2000:]
    assert f"Resumed from {tmp_path / 'preempted'}/ckpt-{stopped}" in out
    a = tf.train.load_checkpoint(str(tmp_path / "straight" / final))
    b = tf.train.load_checkpoint(str(tmp_path / "preempted" / final))
    names = [
        n
        for n in a.get_variable_to_shape_map()
        if "OBJECT_GRAPH" not in n and "save_counter" not in n
    ]
    assert len(names) > 30
    for name in names:
        np.testing.assert_allclose(
            a.get_tensor(name), b.get_tensor(name), rtol=rtol, atol=atol, err_msg=name
        )


# Pre-training preemption (SIGTERM, SIGKILL, kills inside a save): tests/test_faults.py.


def test_tpu_without_hardware_fails_fast():
    # A refused connection and an absent device are errors, not a hang in the resolver.
    with pytest.raises(ValueError, match="cannot reach the TPU"):
        get_strategy("tpu", tpu=f"grpc://127.0.0.1:{_free_port()}")
    with pytest.raises(ValueError, match="no TPU devices"):
        get_strategy("tpu")


def test_parameter_server_is_refused_clearly():
    with pytest.raises(ValueError, match="parameter_server is not supported"):
        get_strategy("parameter_server")


def test_one_device_strategy_trains(masked_data, tmp_path):
    from electra_tf.config import ElectraConfig
    from electra_tf.pretraining.job import PretrainOptions, run_pretraining

    options = _options(
        masked_data,
        tmp_path,
        distribution_strategy="one_device",
        num_train_steps=2,
        log_every_steps=2,
        save_checkpoints_steps=2,
    )
    options["config"] = ElectraConfig.from_preset(
        "tiny", vocab_size=30522, max_position_embeddings=64
    )
    assert run_pretraining(PretrainOptions(**options))["step"] == 2


def test_global_batch_must_divide_over_replicas(masked_data, tmp_path):
    run = _start(
        _options(masked_data, tmp_path, distribution_strategy="mirrored", train_batch_size=15),
        tmp_path / "x.npz",
        "--logical_cpus=2",
    )
    _, err = run.communicate(timeout=300)
    assert run.returncode != 0
    assert "--train_batch_size=15 is not divisible by the 2 replicas" in err


def test_multi_worker_with_xla_and_bfloat16(masked_data, tmp_path):
    procs = _start_workers(
        _options(
            masked_data,
            tmp_path / "mwms",
            distribution_strategy="multi_worker_mirrored",
            num_train_steps=2,
            log_every_steps=2,
            save_checkpoints_steps=2,
            jit_compile=True,
            mixed_precision="bfloat16",
        ),
        tmp_path / "w",
    )
    assert all(_finish(p)["step"] == 2 for p in procs)
    _assert_same_weights(tmp_path / "w0.npz", tmp_path / "w1.npz", rtol=0, atol=0)


# --- fine-tuning on the same engine ---------------------------------------------------


@pytest.fixture(scope="module")
def small_sst2(shared_data, vocab_path, tmp_path_factory) -> str:
    """400 training and 200 dev sentences of the SST-2-like set as records (25 steps/epoch
    at batch 16), so a run crosses epoch ends (evaluations) in a few seconds."""
    from data_prep.build_finetuning_data import Settings, build

    src = tmp_path_factory.mktemp("small_sst2_tsv")
    for split, rows in (("train", 400), ("dev", 200)):
        lines = (shared_data / "sst2_like" / f"{split}.tsv").read_text().splitlines(True)
        (src / f"{split}.tsv").write_text("".join(lines[: rows + 1]))
    out = tmp_path_factory.mktemp("small_sst2")
    build(
        Settings("sst-2", str(src), str(out), vocab_path, max_seq_length=32), stream=io.StringIO()
    )
    return str(out)


def _finetune_options(data_dir, model_dir, **overrides):
    base = dict(
        config={
            "preset": "tiny",
            "vocab_size": 30522,
            "max_position_embeddings": 32,
            "dropout": 0.0,
        },
        data_dir=str(data_dir),
        model_dir=str(model_dir),
        train_batch_size=16,
        num_train_epochs=0.64,  # 16 steps
        learning_rate=1e-3,
        log_every_steps=4,
        seed=3,
    )
    base.update(overrides)
    return base


def test_finetuning_on_mirrored_matches_the_default_strategy(small_sst2, tmp_path):
    default = _start(
        _finetune_options(small_sst2, tmp_path / "default"), tmp_path / "d.npz", "--job=finetune"
    )
    mirrored = _start(
        _finetune_options(small_sst2, tmp_path / "mirrored", distribution_strategy="mirrored"),
        tmp_path / "m.npz",
        "--logical_cpus=2",
        "--job=finetune",
    )
    a, b = _finish(default), _finish(mirrored)
    assert a["step"] == b["step"] == 16
    np.testing.assert_allclose(a["final"]["accuracy"], b["final"]["accuracy"], atol=1e-9)
    _assert_same_weights(
        tmp_path / "d.npz", tmp_path / "m.npz", rtol=1e-5, atol=1e-5, min_variables=30
    )


def test_finetuning_with_multi_worker_mirrored_on_loopback(small_sst2, tmp_path):
    tmp = tmp_path / "worker_tmp"
    tmp.mkdir()
    procs = _start_workers(
        _finetune_options(
            small_sst2,
            tmp_path / "mwms",
            distribution_strategy="multi_worker_mirrored",
            num_train_epochs=2,
            log_every_steps=5,
        ),
        tmp_path / "worker",
        args=("--job=finetune",),
        TMPDIR=str(tmp),
    )
    results = [_finish(p) for p in procs]
    assert all(r["step"] == 50 for r in results)
    assert [e["step"] for e in results[0]["evaluations"]] == [25, 50]
    # Workers stay in sync: one update from the all-reduced global batch.
    _assert_same_weights(
        tmp_path / "worker0.npz", tmp_path / "worker1.npz", rtol=0, atol=0, min_variables=30
    )
    model_dir = tmp_path / "mwms"
    assert (model_dir / "final" / "model.weights.h5").exists()
    written = json.loads((model_dir / "metrics.json").read_text())
    assert [e["step"] for e in written["evaluations"]] == [25, 50]
    assert not list(tmp.glob("electra_worker_*")), "the non-chief's checkpoint dir was not removed"


def _finetune_cli(model_dir, data, extra=()):
    return _cli(
        "electra_tf.finetune",
        f"--data_dir={data}",
        f"--model_dir={model_dir}",
        "--model_size=tiny",
        '--model_overrides={"max_position_embeddings": 32}',
        "--train_batch_size=16",
        "--num_train_epochs=3",
        "--learning_rate=1e-3",
        "--log_every_steps=1",
        "--save_checkpoints_steps=1000",
        *extra,
    )


def test_finetuning_sigterm_mid_epoch_then_rerun_is_bit_identical(small_sst2, tmp_path):
    straight = _finetune_cli(tmp_path / "straight", small_sst2)
    out, err = straight.communicate(timeout=600)
    assert straight.returncode == 0, err[-2000:]

    run = _finetune_cli(tmp_path / "preempted", small_sst2)
    _wait_for_step(run, 33)  # in the second epoch, after its first evaluation
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 143, err[-2000:]
    assert "Stopped by SIGTERM" in out
    stopped = _latest_step(tmp_path / "preempted")
    assert 33 <= stopped < 50, stopped  # mid-epoch (epochs end at 25, 50, 75)

    resumed = _finetune_cli(tmp_path / "preempted", small_sst2)
    _assert_resumed_run_matches(resumed, tmp_path, stopped, "ckpt-75", rtol=0, atol=0)
    history = [
        json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("straight", "preempted")
    ]
    assert history[0]["evaluations"] == history[1]["evaluations"]
