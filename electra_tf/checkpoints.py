"""Saving and loading weights: standalone towers, fine-tuned task models and
training checkpoints.

Everything that reads or writes weights (the jobs, export, convert) goes
through here, so none of them depends on another's job module.

Layouts:
    tower dir       model.weights.h5 + electra_config.json (a discriminator,
                    generator or bare encoder), as pre-training writes
                    `model_dir/discriminator/` and convert writes its output,
                    + vocab.json (the vocab's sha256, size and file) when
                    the vocab it was trained with is known
    task model dir  a tower dir plus task.json and vocab.txt: what
                    fine-tuning writes to `model_dir/final/` and export reads
    training ckpt   tf.train.Checkpoint (model, optimizer, input position,
                    dropout RNG) as `ckpt-<step>.*` in a model_dir
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from typing import Any

import keras
import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.errors import CheckpointWriteError
from electra_tf.io_utils import atomic_write_bytes, atomic_write_json
from electra_tf.modeling import ElectraBackbone, ElectraDiscriminator, ElectraGenerator
from electra_tf.modeling.task_model import ElectraTaskModel
from electra_tf.tasks import get_task
from electra_tf.vocab import Vocab

TASK_FILE = "task.json"
WEIGHTS_FILE = "model.weights.h5"
VOCAB_FILE = "vocab.json"  # which vocab a tower's token ids mean
TOWERS = ("discriminator", "generator", "encoder")


def vocab_identity(vocab: Vocab) -> dict[str, Any]:
    """What vocab.json records of a vocab: enough to tell two apart, and where it was."""
    return {"sha256": vocab.sha256, "size": vocab.size, "file": os.path.abspath(vocab.path)}


def tower_vocab(directory: str) -> dict[str, Any] | None:
    """The vocab.json of a tower or task model directory (None: unknown)."""
    try:
        with open(os.path.join(directory, VOCAB_FILE), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def find_vocab(tower_dir: str, vocab: str | None = None) -> str:
    """The vocab the tower's ids mean: `vocab` if given, else a vocab.txt in
    the tower or beside it, else the file its vocab.json names."""
    if vocab:
        return vocab
    for candidate in (tower_dir, os.path.dirname(os.path.abspath(tower_dir))):
        if os.path.exists(os.path.join(candidate, "vocab.txt")):
            return os.path.join(candidate, "vocab.txt")
    recorded = (tower_vocab(tower_dir) or {}).get("file")
    if recorded and os.path.exists(recorded):
        return recorded
    raise ValueError(
        f"{tower_dir}: no vocab.txt in it or beside it, and no readable vocab.json: pass --vocab"
    )


def check_same_vocab(tower_dir: str, data_vocab: dict[str, Any], data_source: str) -> None:
    """Refuses data tokenized with another vocab than the tower was trained
    with (same size or not), naming both; silent when the tower's is unknown."""
    trained = tower_vocab(tower_dir)
    if trained is None or not data_vocab.get("sha256"):
        return
    if trained["sha256"] != data_vocab["sha256"]:
        raise ValueError(
            f"{data_source} was tokenized with {data_vocab.get('file') or 'a vocab'} "
            f"(sha256 {data_vocab['sha256'][:12]}, {data_vocab.get('size')} tokens) but "
            f"{os.path.join(tower_dir, VOCAB_FILE)} says the model was trained with "
            f"{trained.get('file')} (sha256 {trained['sha256'][:12]}, {trained.get('size')} "
            "tokens): rebuild the data with the model's vocab"
        )


def save_tower(
    model: keras.Model, config: ElectraConfig, directory: str, vocab: dict | None = None
) -> None:
    """Writes one model's weights + config (+ `vocab_identity` of its vocab) so
    it loads alone (atomic per file)."""
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{os.getpid()}.weights.h5")
    try:
        model.save_weights(tmp)
        os.replace(tmp, os.path.join(directory, "model.weights.h5"))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    config.save(os.path.join(directory, "electra_config.json"))
    if vocab is not None:
        atomic_write_json(os.path.join(directory, VOCAB_FILE), vocab)


def save_training_checkpoint(
    manager: tf.train.CheckpointManager, step: int, before_save=None
) -> str:
    """`manager.save` at `step`, after `before_save(step)`; failures leave the
    previous checkpoints as they were.

    TensorFlow writes a checkpoint into `ckpt-<step>_temp/` and renames it into
    place, then rewrites the `checkpoint` state file atomically, so a process
    killed mid-save leaves the last complete checkpoint current. A write that
    fails (ENOSPC, EFBIG) raises CheckpointWriteError naming the directory and
    the checkpoint a rerun will resume from, after removing the partial files.
    """
    try:
        if before_save is not None:
            before_save(step)
        return manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as e:
        partial = os.path.join(manager.directory, f"ckpt-{step}_temp")
        if tf.io.gfile.exists(partial):
            tf.io.gfile.rmtree(partial)
        reason = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:\w+\].*", "", getattr(e, "message", str(e)))
        raise CheckpointWriteError(
            f"could not write the checkpoint of step {step} in {manager.directory}: "
            f"{reason.strip()}. The previous checkpoint "
            f"({manager.latest_checkpoint or 'none'}) is intact: free space (or raise the "
            "limit) and rerun the same command to resume from it."
        ) from None


def remove_partial_checkpoints(directory: str) -> list[str]:
    """Deletes the `ckpt-<step>_temp/` directories of saves that were killed.

    A save killed before TensorFlow renamed its files into place leaves one;
    the checkpoint it was writing is not current, so nothing refers to it.
    Call only while holding the run lock: a live save's directory looks the
    same. Returns the removed paths.
    """
    removed = []
    for path in tf.io.gfile.glob(os.path.join(directory, "ckpt-*_temp")):
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
            removed.append(path)
    return removed


def load_tower(directory: str, tower: str = "discriminator") -> keras.Model:
    """Loads a tower saved by pre-training or `electra_tf.convert`.

    `tower` is "discriminator", "generator" or "encoder" (an ElectraBackbone).
    """
    classes = {
        "discriminator": ElectraDiscriminator,
        "generator": ElectraGenerator,
        "encoder": ElectraBackbone,
    }
    if tower not in classes:
        raise ValueError(f"tower must be one of {sorted(classes)}, got {tower!r}")
    model = classes[tower](ElectraConfig.load_from_dir(directory))
    model.build()
    model.load_weights(os.path.join(directory, "model.weights.h5"))
    return model


def is_tower_dir(path: str) -> bool:
    return os.path.exists(os.path.join(path, WEIGHTS_FILE))


def find_towers(path: str, names: tuple[str, ...], itself: str | None) -> dict[str, str]:
    """The tower directories in `path`, by tower name.

    `path` is a pre-training --model_dir or an `electra_tf.convert` output
    (towers in its `<name>/` folders; those of `names` that hold weights are
    returned), or one tower's directory, returned as the tower `itself`.
    """
    if is_tower_dir(path) and itself is not None:
        return {itself: path}
    candidates = {name: os.path.join(path, name) for name in names}
    return {name: d for name, d in candidates.items() if is_tower_dir(d)}


def find_tower(path: str, flag: str = "--init_checkpoint") -> str:
    """The encoder's tower directory in `path`: itself, or its discriminator/
    or encoder/. Errors name `flag`, the option `path` came from."""
    found = find_towers(path, ("discriminator", "encoder"), itself="discriminator")
    if not found:
        raise ValueError(
            f"{flag}={path}: no {WEIGHTS_FILE} in it or in its discriminator/ or "
            "encoder/ (write one with electra_tf.pretrain or electra_tf.convert)"
        )
    return next(iter(found.values()))


def load_encoder(tower_dir: str) -> keras.Model:
    """The encoder (an `ElectraBackbone`) of a saved discriminator or encoder."""
    errors = []
    for tower in ("discriminator", "encoder"):
        try:
            loaded = load_tower(tower_dir, tower)
        except ValueError as e:  # the h5 holds the other tower's layout
            errors.append(f"{tower}: {e}")
            continue
        return loaded.backbone if tower == "discriminator" else loaded
    raise ValueError(f"{tower_dir}: cannot load as a discriminator or encoder: {errors}")


def save_task_model(model, task: dict[str, Any], vocab_path: str, directory: str) -> None:
    """Writes what inference needs, each file atomically: weights, config, task, vocab."""
    with open(vocab_path, "rb") as f:
        data = f.read()
    lines = data.decode("utf-8", "replace").split("\n")
    vocab = {
        "sha256": hashlib.sha256(data).hexdigest(),  # as Vocab.sha256: the file's bytes
        "size": len(lines) - (lines[-1] == ""),
        "file": os.path.join(os.path.abspath(directory), "vocab.txt"),
    }
    save_tower(model, model.config, directory, vocab)
    atomic_write_bytes(os.path.join(directory, "vocab.txt"), data)
    atomic_write_json(os.path.join(directory, TASK_FILE), task)


def is_task_model_dir(directory: str) -> bool:
    return os.path.exists(os.path.join(directory, TASK_FILE))


def load_task_model(directory: str):
    """(ElectraTaskModel, task dict) from what `save_task_model` wrote."""
    path = os.path.join(directory, TASK_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            task = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path} not found: not a fine-tuned model directory") from None
    kind = get_task(task["kind"])
    model = ElectraTaskModel(
        ElectraConfig.load_from_dir(directory),
        kind,
        num_labels=task["num_labels"],
        with_null=task["with_null"],
        head=task.get("head") or kind.legacy_head,
    )
    model.build()
    model.load_weights(os.path.join(directory, "model.weights.h5"))
    return model, task


class DamagedCheckpointError(ValueError):
    """A checkpoint's files cannot be read (truncated, missing or corrupt)."""


def restore_checkpoint(checkpoint: tf.train.Checkpoint, path: str) -> None:
    """Restores `path` into `checkpoint`, every existing variable included.

    Raises ValueError naming the checkpoint when a variable of the model has
    no value in it (another architecture, size or electra_tf version), rather
    than training on with some weights left at their initialisation, and
    DamagedCheckpointError when its files cannot be read.
    """
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:  # a missing or a mis-shaped variable
        raise ValueError(
            f"checkpoint {path} does not match this model: {str(e)[:300]} ... Was it "
            "written with another config or electra_tf version? Use another "
            "--model_dir, or import the weights with electra_tf.convert."
        ) from None
    except _READ_ERRORS as e:
        raise _damaged(path, e) from None


# How TensorFlow reports checkpoint files it cannot read (a truncated .data
# file gives IndexError "Read less bytes than requested").
_READ_ERRORS = (tf.errors.OpError, IndexError, OSError)


def _damaged(path: str, error: Exception) -> DamagedCheckpointError:
    reason = (getattr(error, "message", None) or str(error) or type(error).__name__).strip()
    return DamagedCheckpointError(
        f"checkpoint {path} is damaged ({path}.index / {path}.data-*): "
        f"{reason.splitlines()[0][:200]}"
    )


def restore_latest(model_dir: str, restorable, stream=sys.stdout) -> str | None:
    """Restores the newest readable checkpoint of `model_dir`; its path, or None
    when there is none.

    `restorable(path)` gives the `tf.train.Checkpoint` to restore `path` into.
    A damaged newest checkpoint (a disk that filled or failed after the save
    was recorded, a copy cut short) is named, and the one before it is tried,
    and so on; its files are left where they are. A checkpoint of another
    model is an error, not a reason to fall back.
    """
    state = tf.train.get_checkpoint_state(model_dir)
    if state is None or not state.model_checkpoint_path:
        return None
    paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    if state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    paths = [p if os.path.isabs(p) else os.path.join(model_dir, p) for p in reversed(paths)]
    damaged = []
    for path in paths:
        try:
            try:
                target = restorable(path)
            except _READ_ERRORS as e:
                raise _damaged(path, e) from None
            restore_checkpoint(target, path)
        except DamagedCheckpointError as e:
            damaged.append(str(e))
            print(f"warning: {e}; trying the checkpoint before it", file=stream, flush=True)
            continue
        if damaged:
            print(
                f"Resuming from {path}, the newest intact checkpoint (the newer one is "
                "damaged; its files are left in place)",
                file=stream,
                flush=True,
            )
        return path
    raise ValueError(
        f"every checkpoint in {model_dir} is damaged: {'; '.join(damaged)}. Move them "
        "away to start over, or restore the directory from a copy."
    )
