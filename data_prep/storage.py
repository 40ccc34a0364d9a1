"""Files for data prep: local paths, or any filesystem Apache Beam knows.

A path with a scheme (`gs://`, `s3://`, `hdfs://`, `azfs://`) goes through
`apache_beam.io.filesystems.FileSystems` (which needs the matching Beam extra,
e.g. `apache-beam[gcp]`); a plain path through the OS. Writes are atomic
either way: a local file is written to a temporary name and renamed; a remote
object appears whole when its upload is closed.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from typing import IO

from electra_tf.io_utils import atomic_write_bytes
from electra_tf.vocab import Vocab


def is_remote(path: str) -> bool:
    return "://" in path


def _fs():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def join(directory: str, name: str) -> str:
    return _fs().join(directory, name) if is_remote(directory) else os.path.join(directory, name)


def match(pattern: str) -> list[str]:
    """The files a glob matches, sorted."""
    if is_remote(pattern):
        results = _fs().match([pattern])[0].metadata_list
        return sorted(m.path for m in results)
    return sorted(p for p in glob.glob(os.path.expanduser(pattern)) if os.path.isfile(p))


def size(path: str) -> int:
    if is_remote(path):
        return _fs().match([path])[0].metadata_list[0].size_in_bytes
    return os.path.getsize(path)


def open_read(path: str) -> IO[bytes]:
    """A binary stream of the file as stored (no decompression)."""
    if is_remote(path):
        from apache_beam.io.filesystem import CompressionTypes

        return _fs().open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    return open(path, "rb")


def read_bytes(path: str) -> bytes:
    with open_read(path) as f:
        return f.read()


def write_bytes(path: str, data: bytes) -> None:
    """Writes `path` so that it appears whole or not at all."""
    if is_remote(path):
        with _fs().create(path) as f:
            f.write(data)
    else:
        atomic_write_bytes(path, data)


def publish(local_file: str, path: str) -> None:
    """Moves a finished local file to `path` (a rename when local)."""
    if is_remote(path):
        with open(local_file, "rb") as src, _fs().create(path) as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        os.unlink(local_file)
    else:
        os.replace(local_file, path)


def local_scratch(path: str) -> str:
    """A temporary local file name for output headed to `path`."""
    directory = None if is_remote(path) else os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=directory)
    os.close(fd)
    return tmp


def makedirs(directory: str) -> None:
    if not is_remote(directory):
        os.makedirs(directory, exist_ok=True)


def listdir(directory: str) -> list[str]:
    """Names (not paths) of the files directly in `directory`."""
    if is_remote(directory):
        prefix = directory.rstrip("/") + "/"
        return [p[len(prefix) :] for p in match(prefix + "*") if "/" not in p[len(prefix) :]]
    return os.listdir(directory) if os.path.isdir(directory) else []


def remove(path: str) -> None:
    if is_remote(path):
        _fs().delete([path])
    else:
        os.unlink(path)


def load_vocab(path: str) -> Vocab:
    """The vocab at `path`, local or remote (read into memory, no temp copy)."""
    if not is_remote(path):
        return Vocab.load(path)
    try:
        data = read_bytes(path)
    except (OSError, ValueError) as e:  # Beam reports a missing object as either
        raise ValueError(f"Cannot read vocab file {path}: {e}") from e
    return Vocab.from_bytes(data, path)
