"""Injected faults: chaos preemption, kills inside saves, a full disk, damaged
shards, non-finite steps and two jobs on one model_dir. Nothing may be lost."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pathlib
import resource
import shutil
import signal

import chaos
import numpy as np
import pytest
import tensorflow as tf
from helpers import REPO, cli_env, python_command, run_python, start_python, tiny_pretrain_options

from electra_tf.compat import tf_record_random_reader
from electra_tf.engine.run_lock import ModelDirInUseError, RunLock
from electra_tf.errors import TrainingHalted
from electra_tf.modeling import ElectraPretrainer
from electra_tf.pretraining import data as data_lib
from electra_tf.pretraining.job import run_pretraining
from electra_tf.shard_scan import scan_shard


def _cli(model_dir, data, steps, *extra) -> list[str]:
    """The arguments of python for a tiny pre-training run."""
    return [
        "-m",
        "electra_tf.pretrain",
        "--flagfile=configs/tiny.flags",
        f"--train_data={data}/pretrain-*",
        f"--model_dir={model_dir}",
        "--max_seq_length=64",
        f"--num_train_steps={steps}",
        "--log_every_steps=1",
        "--save_checkpoints_steps=2",
        "--train_batch_size=8",
        "--warmup_steps=2",
        *extra,
    ]


def _weights(checkpoint):
    reader = tf.train.load_checkpoint(str(checkpoint))
    names = [
        n
        for n in reader.get_variable_to_shape_map()
        if "OBJECT_GRAPH" not in n and "save_counter" not in n
    ]
    return {n: reader.get_tensor(n) for n in names}


def _assert_same(a, b, rtol=1e-5, atol=1e-6):
    assert a.keys() == b.keys() and len(a) > 30
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=rtol, atol=atol, err_msg=name)


def _copy_shards(src, dst) -> pathlib.Path:
    shutil.copytree(src, dst)
    return pathlib.Path(dst)


def _record_offset(path, index):
    reader, offset = tf_record_random_reader(str(path)), 0
    for _ in range(index):
        offset = reader.read(offset)[1]
    return offset


def _flip_byte_in_record(path, index):
    offset = _record_offset(path, index)
    data = bytearray(pathlib.Path(path).read_bytes())
    data[offset + 12 + 20] ^= 0xFF  # inside the record's data, past its 12-byte header
    pathlib.Path(path).write_bytes(bytes(data))
    return offset


# --- preemption and kills -------------------------------------------------------


@pytest.mark.slow
def test_chaos_soak_sigterms_and_sigkills_end_with_the_uninterrupted_weights(masked_data, tmp_path):
    steps = 16
    straight = chaos.run_attempt(
        python_command(*_cli(tmp_path / "straight", masked_data, steps)),
        str(tmp_path / "straight"),
        None,
        None,
        steps,
        env=cli_env(),
        cwd=REPO,
    )
    assert straight.returncode == 0
    model_dir = tmp_path / "chaos"
    faults = ["sigterm", "sigkill_in_save", "sigterm", "sigkill"]
    attempts = chaos.run_with_faults(
        python_command(*_cli(model_dir, masked_data, steps)),
        str(model_dir),
        faults,
        steps,
        seed=7,
        env=cli_env(),
        cwd=REPO,
    )
    delivered = [a.fault for a in attempts if a.fault]
    assert delivered.count("sigterm") == 2, attempts
    assert "sigkill_in_save" in delivered, attempts
    for before, after in zip(attempts, attempts[1:]):
        if before.fault == "sigterm":
            assert before.returncode == 143
            # A preempted run saves the step it stopped at, so nothing is lost.
            assert after.resumed_from >= before.last_step_seen, attempts
        if before.fault:
            assert after.resumed_from > 0 or before.last_step_seen < 2, attempts
    assert attempts[-1].returncode == 0
    _assert_same(
        _weights(tmp_path / "straight" / f"ckpt-{steps}"), _weights(model_dir / f"ckpt-{steps}")
    )
    assert not list(model_dir.glob("*_temp")), "a killed save left its temp directory"


def test_a_full_disk_during_a_save_keeps_the_older_checkpoints(masked_data, tmp_path):
    first = run_python(*_cli(tmp_path, masked_data, 4))
    assert first.returncode == 0, first.stderr[-2000:]
    limit = os.path.getsize(tmp_path / "ckpt-4.data-00000-of-00001") // 2

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full = run_python(*_cli(tmp_path, masked_data, 8), preexec_fn=small_disk)
    assert full.returncode == 74, full.stderr[-2000:]
    assert "could not write the checkpoint of step 6" in full.stderr
    assert "File too large" in full.stderr and "ckpt-4) is intact" in full.stderr
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-4")
    assert not list(tmp_path.glob("*_temp")) and not list(tmp_path.glob("*/.tmp-*"))
    _weights(tmp_path / "ckpt-4")  # still loads
    resumed = run_python(*_cli(tmp_path, masked_data, 8))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resumed from" in resumed.stdout and "ckpt-4" in resumed.stdout
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-8")


def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(masked_data, tmp_path):
    options = tiny_pretrain_options(
        masked_data, tmp_path, num_train_steps=4, save_checkpoints_steps=2, log_every_steps=2
    )
    run_pretraining(options, io.StringIO())
    assert (tmp_path / "ckpt-2.index").exists()
    data = tmp_path / "ckpt-4.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # a copy cut short
    log = io.StringIO()
    results = run_pretraining(dataclasses.replace(options, num_train_steps=6), log)
    text = log.getvalue()
    assert f"checkpoint {tmp_path / 'ckpt-4'} is damaged" in text, text
    assert f"Resuming from {tmp_path / 'ckpt-2'}, the newest intact checkpoint" in text
    assert results["step"] == 6
    _weights(tmp_path / "ckpt-4")  # step 4 was trained again and saved whole


def test_a_refused_resume_leaves_the_run_s_config_files_alone(masked_data, tmp_path):
    options = tiny_pretrain_options(
        masked_data, tmp_path, num_train_steps=2, save_checkpoints_steps=2
    )
    run_pretraining(options, io.StringIO())
    before = {
        n: (tmp_path / n).read_text() for n in ("electra_config.json", "pretrain_options.json")
    }
    wider = dataclasses.replace(options.config, hidden_size=128, num_heads=2, intermediate_size=256)
    with pytest.raises(ValueError, match="does not match this model"):
        run_pretraining(
            dataclasses.replace(options, config=wider, num_train_steps=4), io.StringIO()
        )
    after = {n: (tmp_path / n).read_text() for n in before}
    assert after == before


def test_ctrl_c_saves_and_exits_like_sigterm(masked_data, tmp_path):
    proc = start_python(*_cli(tmp_path, masked_data, 400), "--save_checkpoints_steps=1000")
    for line in proc.stdout:
        if line.startswith("step "):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "Stopped by SIGINT at step" in out
    step = int(out.split("Stopped by SIGINT at step ")[1].split(":")[0])
    assert 0 < step < 400 and (tmp_path / f"ckpt-{step}.index").exists()


# --- damaged shards ---------------------------------------------------------------


def test_a_truncated_shard_is_named_before_training(masked_data, tmp_path):
    data = _copy_shards(masked_data, tmp_path / "data")
    shard = sorted(data.glob("pretrain-*.tfrecord"))[0]
    # A cut inside a record's length header: TensorFlow's own reader takes it
    # for the end of the file and silently drops every record after it.
    cut = _record_offset(shard, 10) + 5
    shard.write_bytes(shard.read_bytes()[:cut])
    assert len(list(tf.data.TFRecordDataset(str(shard)))) == 10
    with pytest.raises(ValueError, match=rf"{shard.name} has {cut} bytes but was written with"):
        data_lib.inspect_data(f"{data}/pretrain-*")
    scan = scan_shard(str(shard))
    assert (scan.num_readable, scan.lost_bytes, scan.lost_at, scan.corrupt) == (
        10,
        5,
        cut - 5,
        [],
    )


def test_a_foreign_or_empty_shard_is_named(masked_data, unmasked_data, tmp_path):
    data = _copy_shards(masked_data, tmp_path / "data")
    foreign = sorted(pathlib.Path(unmasked_data).glob("pretrain-*.tfrecord"))[0]
    shutil.copy(foreign, data / "pretrain-extra.tfrecord")
    with pytest.raises(ValueError, match="pretrain-extra.tfrecord is not one of the shards"):
        data_lib.inspect_data(f"{data}/pretrain-*")
    # Records from elsewhere (BERT's, Model Garden's: other names, no
    # dataset_info.json) are compared by their layout.
    os.remove(data / "dataset_info.json")
    for i, shard in enumerate(sorted(data.glob("pretrain-0*.tfrecord"))):
        shard.rename(data / f"pretrain-bert-{i}.tfrecord")
    with pytest.raises(
        ValueError, match="pretrain-extra.tfrecord holds records of length 64 with None"
    ):
        data_lib.inspect_data(f"{data}/pretrain-*")
    (data / "pretrain-extra.tfrecord").write_bytes(b"")
    with pytest.raises(ValueError, match="pretrain-extra.tfrecord holds no records"):
        data_lib.inspect_data(f"{data}/pretrain-*")


def test_an_interrupted_data_prep_is_called_incomplete_not_damaged(masked_data, tmp_path):
    data = _copy_shards(masked_data, tmp_path / "data")
    shards = sorted(data.glob("pretrain-*.tfrecord"))
    shards[-1].unlink()
    with pytest.raises(
        ValueError, match=r"incomplete shard set: .* lists 2 shards and 1 are missing"
    ):
        data_lib.inspect_data(f"{data}/pretrain-*")
    (data / "dataset_info.json").unlink()  # data prep writes it last
    with pytest.raises(ValueError) as error:
        data_lib.inspect_data(f"{data}/pretrain-*", skip_corrupt_records=True)
    message = str(error.value)
    assert "incomplete shard set: 1 of 2 shards and no dataset_info.json" in message
    assert "did not finish (not damage)" in message and "skip_corrupt" not in message


def test_shards_built_with_another_vocab_are_refused(masked_data, tmp_path):
    first = _copy_shards(masked_data, tmp_path / "a")
    second = _copy_shards(masked_data, tmp_path / "b")
    info = json.loads((second / "dataset_info.json").read_text())
    info["vocab_sha256"] = "0" * 64
    (second / "dataset_info.json").write_text(json.dumps(info))
    with pytest.raises(
        ValueError, match=r"built differently: dataset_info.json field vocab_sha256"
    ):
        data_lib.inspect_data(f"{first}/pretrain-*,{second}/pretrain-*")


def test_a_corrupt_record_is_named_or_skipped_and_counted(masked_data, tmp_path):
    data = _copy_shards(masked_data, tmp_path / "data")
    shard = sorted(data.glob("pretrain-*.tfrecord"))[0]
    offset = _flip_byte_in_record(shard, 5)
    options = dict(num_train_steps=30, save_checkpoints_steps=30, log_every_steps=10)
    with pytest.raises(ValueError) as error:
        run_pretraining(tiny_pretrain_options(data, tmp_path / "strict", **options))
    assert f"{shard}: record 5 (byte {offset}) fails its checksum" in str(error.value)
    assert "--skip_corrupt_records" in str(error.value)

    # Opted in: one record is skipped, the rest of the file still read.
    inspected = data_lib.inspect_data(f"{data}/pretrain-*", skip_corrupt_records=True)
    total = sum(scan_shard(str(f)).num_readable for f in data.glob("pretrain-*.tfrecord"))
    one_pass = data_lib.pretraining_dataset(inspected, 16, training=False)
    assert sum(int(b["input_ids"].shape[0]) for b in one_pass) == total
    assert inspected.skipped()["corrupt_records"] == 1
    results = run_pretraining(
        tiny_pretrain_options(data, tmp_path / "lenient", skip_corrupt_records=True, **options)
    )
    assert results["step"] == 30
    saved = json.loads((tmp_path / "lenient" / "results.json").read_text())
    skipped = saved["skipped_data"]["--train_data"]
    assert skipped["corrupt_records"] == 1 and "record 5" in skipped["damaged_files"][0]


# --- non-finite steps ---------------------------------------------------------------


def _poison(monkeypatch, bad_steps):
    """Makes the loss NaN at the given steps (so are all its gradients)."""
    forward = ElectraPretrainer._forward

    def poisoned(self, batch, norms, seed, training, row_offset=0, step=None):
        out = forward(self, batch, norms, seed, training, row_offset, step)
        if step is None:
            return out
        bad = tf.reduce_any(tf.equal(step, tf.constant(bad_steps, tf.int32)))
        # A factor, not tf.where: where's unused branch would send NaN
        # gradients into every step.
        factor = tf.where(bad, tf.constant(np.nan, out["loss"].dtype), 1.0)
        return {**out, "loss": out["loss"] * factor}

    monkeypatch.setattr(ElectraPretrainer, "_forward", poisoned)


def _model_weights(checkpoint):
    # The object graph files each model weight under its first path, the optimizer's.
    return {k: v for k, v in _weights(checkpoint).items() if "_trainable_variables/" in k}


def test_a_non_finite_step_is_skipped_and_counted(masked_data, tmp_path, monkeypatch):
    options = dict(num_train_steps=4, save_checkpoints_steps=1, log_every_steps=1)
    run_pretraining(tiny_pretrain_options(masked_data, tmp_path / "clean", **options))
    _poison(monkeypatch, [3])
    log = io.StringIO()
    results = run_pretraining(
        tiny_pretrain_options(masked_data, tmp_path / "nan", **options), stream=log
    )
    assert results["skipped_steps"] == 1 and results["step"] == 4
    assert "step 4: non-finite loss or gradients, update skipped (1 in a row" in log.getvalue()
    assert "skipped_steps 1" in log.getvalue()
    # Step 3's update was skipped: the weights after it are those after step 2.
    _assert_same(
        _model_weights(tmp_path / "clean" / "ckpt-3"),
        _model_weights(tmp_path / "nan" / "ckpt-4"),
        rtol=0,
        atol=0,
    )


def test_too_many_non_finite_steps_stop_with_the_last_good_weights(
    masked_data, tmp_path, monkeypatch
):
    _poison(monkeypatch, list(range(2, 100)))
    options = tiny_pretrain_options(
        masked_data,
        tmp_path,
        num_train_steps=20,
        save_checkpoints_steps=2,
        log_every_steps=1,
        max_consecutive_nonfinite=3,
    )
    with pytest.raises(TrainingHalted, match="3 steps in a row"):
        run_pretraining(options)
    last = tf.train.latest_checkpoint(str(tmp_path))
    assert last.endswith("ckpt-5")
    saved = _model_weights(last)
    assert all(np.isfinite(v).all() for v in saved.values())
    _assert_same(_model_weights(tmp_path / "ckpt-2"), saved, rtol=0, atol=0)


def test_a_checkpoint_without_the_non_finite_counters_still_resumes(
    masked_data, tmp_path, monkeypatch
):
    import electra_tf.engine.loop as loop

    real = tf.train.Checkpoint

    def without_counters(**parts):  # what electra_tf wrote before the counters existed
        parts.pop("nonfinite", None)
        return real(**parts)

    monkeypatch.setattr(loop.tf.train, "Checkpoint", without_counters)
    run_pretraining(
        tiny_pretrain_options(masked_data, tmp_path, num_train_steps=4, max_steps_per_run=2)
    )
    monkeypatch.setattr(loop.tf.train, "Checkpoint", real)
    log = io.StringIO()
    results = run_pretraining(
        tiny_pretrain_options(masked_data, tmp_path, num_train_steps=4), stream=log
    )
    assert "Resumed from" in log.getvalue() and results["step"] == 4


# --- two jobs, one model_dir ----------------------------------------------------------


def test_a_second_job_on_a_model_dir_in_use_is_refused(masked_data, tmp_path):
    holder = RunLock(str(tmp_path))
    holder.acquire()
    try:
        with pytest.raises(
            ModelDirInUseError, match=rf"in use by another training job \(pid {os.getpid()}"
        ):
            run_pretraining(tiny_pretrain_options(masked_data, tmp_path, num_train_steps=2))
    finally:
        holder.release()


def test_a_killed_jobs_lock_does_not_block_a_rerun(masked_data, tmp_path):
    code = (
        "import sys, time; from electra_tf.engine.run_lock import RunLock; "
        f"RunLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(600)"
    )
    proc = start_python("-c", code, stderr=None)
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(ModelDirInUseError, match=f"pid {proc.pid}"):
        RunLock(str(tmp_path)).acquire()
    proc.kill()
    proc.wait()
    results = run_pretraining(tiny_pretrain_options(masked_data, tmp_path, num_train_steps=2))
    assert results["step"] == 2


def test_a_rerun_removes_the_temp_directory_of_a_killed_save(masked_data, tmp_path):
    run_pretraining(tiny_pretrain_options(masked_data, tmp_path, num_train_steps=2))
    # What a save killed between writing its shards and renaming them leaves.
    partial = tmp_path / "ckpt-3_temp"
    partial.mkdir()
    (partial / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 64)
    log = io.StringIO()
    results = run_pretraining(
        tiny_pretrain_options(masked_data, tmp_path, num_train_steps=4), stream=log
    )
    assert results["step"] == 4 and "Resumed from" in log.getvalue()
    assert not partial.exists() and "left by a killed save" in log.getvalue()


# --- serving under load -----------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


_HOSTILE = [
    [b""],
    [b"   \t\n  "],
    [("great movie " * 2000).encode()],  # 24k characters, far past max_seq_length
    ["😀🎬👍 ok".encode()],
    [b"\xff\xfe\xfa invalid utf-8 \xc3"],
    [b"nul\x00inside"],
    ["ＦＵＬＬ width ﬁ ligature Ⅻ ½".encode()],
    [b"a\x1fb\x7f\xc2\x85c"],  # control characters
    [b"a plain sentence about a film"] * 64,  # a large batch
    [b"mixed", b"", "ünïcödé".encode(), b"\xff"],
]


def test_the_saved_model_under_concurrent_hostile_load(sst2_classifier, tmp_path):
    import threading
    import time

    from electra_tf.serving.saved_model import export

    serve = tf.saved_model.load(export(sst2_classifier, str(tmp_path / "export"))).signatures[
        "serving_default"
    ]
    for texts in _HOSTILE:  # warm-up: every shape traced once
        serve(text=tf.constant(texts))
    before = _rss_mb()
    latencies, errors = [], []

    def client(worker: int) -> None:
        for i in range(60):
            texts = _HOSTILE[(worker * 7 + i) % len(_HOSTILE)]
            start = time.perf_counter()
            try:
                out = serve(text=tf.constant(texts))
                probabilities = out["probabilities"].numpy()
                assert probabilities.shape[0] == len(texts)
                assert np.isfinite(probabilities).all()
                np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
            except Exception as e:  # collected: an assert in a thread would be lost
                errors.append(f"{texts[0][:30]!r}: {e}")
            latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grown = _rss_mb() - before
    assert not errors, errors[:5]
    assert len(latencies) == 240
    # 240 requests after warm-up: a leak of even 1 MB per request would show.
    assert grown < 64, f"RSS grew {grown:.0f} MB over 240 requests"
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    print(f"serving under load: 4 threads, 240 requests, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"RSS +{grown:.1f} MB")  # fmt: skip
