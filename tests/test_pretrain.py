"""Pre-training on real text: learning, exact resume, precision/XLA paths, errors, CLI."""

import io
import json

import numpy as np
import pytest
import tensorflow as tf
from helpers import run_cli, tiny_pretrain_options

from electra_tf.config import ElectraConfig
from electra_tf.engine.loop import Engine
from electra_tf.pretraining.job import run_pretraining

_options = tiny_pretrain_options


def _checkpoint_values(model_dir):
    """Every numeric tensor of the latest checkpoint (weights, slots, step, RNG)."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(model_dir)))
    values = {
        n: reader.get_tensor(n)
        for n in reader.get_variable_to_shape_map()
        if "save_counter" not in n
    }
    return {n: v for n, v in values.items() if np.asarray(v).dtype.kind in "fiu"}


def test_loss_falls_on_real_text(masked_data, tmp_path):
    results = run_pretraining(
        _options(
            masked_data,
            tmp_path,
            num_train_steps=150,
            learning_rate=3e-3,  # Adam with bias correction (the default for short warmups)
            log_every_steps=25,
            save_checkpoints_steps=150,
            eval_data=f"{masked_data}/pretrain-00001*",
            num_eval_steps=4,
        )
    )
    last = results["train"]  # the last logging interval
    assert results["step"] == 150
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["step"] == 150 and "eval" in saved
    # Generator MLM loss starts near ln(30522) = 10.3 and must fall clearly.
    assert last["gen_loss"] < 8.0
    assert saved["eval"]["gen_loss"] < 8.0
    assert 0.05 < last["replaced_fraction"] < 0.2
    assert (tmp_path / "discriminator" / "model.weights.h5").exists()
    assert (tmp_path / "generator" / "model.weights.h5").exists()
    assert list((tmp_path / "train").iterdir()), "TensorBoard events written"


def test_resume_is_exact(masked_data, tmp_path):
    straight = tmp_path / "straight"
    run_pretraining(_options(masked_data, straight))
    resumed = tmp_path / "resumed"
    first = run_pretraining(_options(masked_data, resumed, max_steps_per_run=10))
    assert first["step"] == 10
    second = run_pretraining(_options(masked_data, resumed))
    assert second["step"] == 20
    a, b = _checkpoint_values(straight), _checkpoint_values(resumed)
    assert a.keys() == b.keys() and len(a) > 50
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # The same again resumes nothing.
    assert run_pretraining(_options(masked_data, resumed))["step"] == 20


def test_resume_off_the_logging_grid(masked_data, tmp_path):
    # Stop at step 7 (not a multiple of log_every_steps=5) and finish at 20.
    run_pretraining(_options(masked_data, tmp_path, max_steps_per_run=7, save_checkpoints_steps=10))
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-7")
    assert run_pretraining(_options(masked_data, tmp_path))["step"] == 20


def test_resume_refuses_a_changed_schedule(masked_data, tmp_path):
    run_pretraining(_options(masked_data, tmp_path, max_steps_per_run=5))
    before = _checkpoint_values(tmp_path)
    with pytest.raises(ValueError, match=r"--learning_rate=0.002 \(the run has 0.001\)") as e:
        run_pretraining(_options(masked_data, tmp_path, learning_rate=2e-3, warmup_steps=3))
    assert "--warmup_steps=3" in str(e.value) and "--init_checkpoint" in str(e.value)
    # The engine refuses as it is made, before a job builds a model.
    with pytest.raises(ValueError, match="--learning_rate=0.002"):
        Engine(_options(masked_data, tmp_path, learning_rate=2e-3))
    after = _checkpoint_values(tmp_path)  # nothing was trained or written
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[n], after[n]) for n in before)
    # Options that do not shape the trajectory may change: the run resumes.
    assert run_pretraining(_options(masked_data, tmp_path, log_every_steps=10))["step"] == 20
    # Training a finished run further is allowed, and said.
    log = io.StringIO()
    assert run_pretraining(_options(masked_data, tmp_path, num_train_steps=25), log)["step"] == 25
    assert "--num_train_steps=25 (the run was recorded with 20)" in log.getvalue()


def test_dynamic_masking_on_unmasked_records(unmasked_data, tmp_path):
    results = run_pretraining(_options(unmasked_data, tmp_path, num_train_steps=10))
    assert results["step"] == 10 and 0.05 < results["train"]["replaced_fraction"] < 0.2


@pytest.mark.parametrize(
    "precision,jit", [("bfloat16", False), ("float16", False), ("float32", True)]
)
def test_precision_and_xla_paths_run(masked_data, tmp_path, precision, jit):
    results = run_pretraining(
        _options(
            masked_data,
            tmp_path,
            num_train_steps=4,
            log_every_steps=2,
            save_checkpoints_steps=4,
            mixed_precision=precision,
            jit_compile=jit,
            grad_accum_steps=2,
            # float16 skips (and does not count) steps with non-finite gradients.
            steps_per_execution=1 if precision == "float16" else 2,
        )
    )
    assert results["step"] == 4 and np.isfinite(results["train"]["loss"])


@pytest.mark.slow
def test_bfloat16_follows_the_float32_loss_curve(masked_data, tmp_path):
    """300 steps of the same run in float32 and mixed bfloat16: the mean loss
    over the last 50 steps agrees within a few percent, and both learned."""
    untrained = run_pretraining(
        _options(masked_data, tmp_path / "start", num_train_steps=10, log_every_steps=10)
    )["train"]["loss"]
    final = {}
    for precision in ("float32", "bfloat16"):
        results = run_pretraining(
            _options(
                masked_data,
                tmp_path / precision,
                num_train_steps=300,
                warmup_steps=30,
                log_every_steps=50,
                save_checkpoints_steps=300,
                mixed_precision=precision,
            )
        )
        final[precision] = results["train"]["loss"]
    assert final["float32"] < 0.8 * untrained, (untrained, final)
    assert final["bfloat16"] == pytest.approx(final["float32"], rel=0.05), final


def test_data_that_does_not_fit_the_model_is_refused(masked_data, tmp_path):
    with pytest.raises(
        ValueError, match="vocab_size=30522 but the training run uses vocab_size=1000"
    ):
        run_pretraining(
            _options(
                masked_data, tmp_path, config=ElectraConfig.from_preset("tiny", vocab_size=1000)
            )
        )
    with pytest.raises(
        ValueError, match="max_seq_length=64 but the training run uses max_seq_length=32"
    ):
        run_pretraining(_options(masked_data, tmp_path, max_seq_length=32))
    with pytest.raises(ValueError, match="matches no file"):
        run_pretraining(_options(str(tmp_path / "nowhere"), tmp_path))
    with pytest.raises(ValueError, match="grad_accum_steps"):
        run_pretraining(_options(masked_data, tmp_path, grad_accum_steps=3))


def test_cli_runs_from_a_flagfile_and_rejects_unknown_flags(masked_data, tmp_path):
    cmd = [
        "electra_tf.pretrain",
        "--flagfile=configs/tiny.flags",
        f"--train_data={masked_data}/pretrain-*",
        f"--model_dir={tmp_path}",
        "--max_seq_length=64",
        "--num_train_steps=6",
        "--log_every_steps=3",
        "--save_checkpoints_steps=6",
        "--train_batch_size=8",
    ]
    r = run_cli(*cmd, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "step       6/6" in r.stdout and "Checkpoint:" in r.stdout
    # The start banner comes before the first step: what runs, on what, where.
    banner = r.stdout[: r.stdout.index("step ")]
    assert "ELECTRA pre-training of a 2-layer, 64-wide encoder:" in banner
    assert "M trainable parameters" in banner and "6 steps, global batch 8 on 1 replica" in banner
    assert f"data: 2 file(s) in {masked_data}" in banner and "sequences of 64" in banner
    assert f"outputs: {tmp_path} (a checkpoint every 6 steps" in banner
    assert json.loads((tmp_path / "electra_config.json").read_text())["num_layers"] == 2
    r = run_cli(*cmd, "--no_such_flag=1", timeout=300)
    assert r.returncode == 2 and "no_such_flag" in r.stderr
    r = run_cli(*cmd, "--model_overrides={bad", timeout=300)
    assert r.returncode == 2 and "--model_overrides" in r.stderr


def test_progress_lines_come_at_least_every_interval_with_an_eta():
    import io

    from electra_tf.engine.callbacks import StepLogger, format_duration

    now = [0.0]
    out = io.StringIO()
    logger = StepLogger(None, 32, 100, out, progress_seconds=30, clock=lambda: now[0])
    now[0] = 10.0
    logger.heartbeat()
    assert out.getvalue() == ""  # not yet 30 s of silence
    now[0] = 31.0
    logger.heartbeat()
    assert out.getvalue() == "building the training graph and the input pipeline (31s so far)\n"
    now[0] = 40.0
    logger.on_train_batch_end(9)  # step 10: the rate is measured from here
    now[0] = 60.0
    logger.on_train_batch_end(29)  # step 30
    now[0] = 80.0
    logger.heartbeat()  # 20 steps in 40 s, 70 to go
    assert out.getvalue().splitlines()[-1] == "step      30/100  0.50 steps/s  ETA 2m20s"
    now[0] = 100.0
    logger.heartbeat()
    assert len(out.getvalue().splitlines()) == 2  # 20 s since the last line
    assert format_duration(3723) == "1h02m03s" and format_duration(5) == "5s"


def test_gradient_accumulation_equals_one_big_batch(masked_data, tmp_path):
    # Sampling is keyed by the row in the global batch and dropout is off, so
    # 4 micro-batches of 4 must give the same update as one batch of 16.
    config = ElectraConfig.from_preset(
        "tiny", vocab_size=30522, max_position_embeddings=64, dropout=0.0
    )
    one = run_pretraining(_options(masked_data, tmp_path / "one", config=config, num_train_steps=6))
    four = run_pretraining(
        _options(
            masked_data, tmp_path / "four", config=config, num_train_steps=6, grad_accum_steps=4
        )
    )
    np.testing.assert_allclose(one["train"]["loss"], four["train"]["loss"], rtol=1e-5)
    a, b = _checkpoint_values(tmp_path / "one"), _checkpoint_values(tmp_path / "four")
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_restore_refuses_a_checkpoint_of_another_architecture(tmp_path):
    """A variable with no value, or a value of another shape, in the checkpoint is
    an error naming the file, never a partial restore (e.g. a checkpoint written
    with another config or an older layer layout)."""
    from electra_tf.checkpoints import restore_checkpoint
    from electra_tf.modeling import ElectraDiscriminator
    from electra_tf.optimization import create_optimizer

    def checkpoint(layers):
        model = ElectraDiscriminator(
            ElectraConfig.from_preset("tiny", vocab_size=50, num_layers=layers)
        )
        model.build()
        optimizer = create_optimizer("adamw", 1e-3, 1, 10)
        optimizer.build(model.trainable_variables)  # tracks every weight, as in training
        return tf.train.Checkpoint(model=model, optimizer=optimizer)

    one = checkpoint(1).save(str(tmp_path / "one" / "ckpt"))
    two = checkpoint(2).save(str(tmp_path / "two" / "ckpt"))
    with pytest.raises(ValueError, match="one/ckpt-1 does not match this model"):
        restore_checkpoint(checkpoint(2), one)
    with pytest.raises(ValueError, match="two/ckpt-1 does not match this model"):
        restore_checkpoint(checkpoint(1), two)
    restore_checkpoint(checkpoint(1), one)
