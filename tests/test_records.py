"""The hand-written tf.train.Example encoder against TensorFlow's parser."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.records import TFRecordWriter, check_dataset_info, encode_examples


def test_encoded_examples_parse_back_exactly():
    rng = np.random.default_rng(0)
    batch = {
        "input_ids": rng.integers(0, 2**40, (5, 128)),  # multi-byte varints
        "input_mask": np.ones((5, 128), np.int64),
        "segment_ids": np.zeros((5, 128), np.int64),
        "masked_lm_weights": rng.random((5, 19)).astype(np.float32),
    }
    spec = {
        "input_ids": tf.io.FixedLenFeature([128], tf.int64),
        "input_mask": tf.io.FixedLenFeature([128], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([128], tf.int64),
        "masked_lm_weights": tf.io.FixedLenFeature([19], tf.float32),
    }
    parsed = tf.io.parse_example(encode_examples(batch), spec)
    for name, values in batch.items():
        np.testing.assert_array_equal(parsed[name].numpy(), values)
    # And protobuf agrees it is a well-formed Example.
    example = tf.train.Example.FromString(encode_examples(batch)[2])
    assert (
        list(example.features.feature["input_ids"].int64_list.value)
        == batch["input_ids"][2].tolist()
    )


def test_negative_ints_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        encode_examples({"x": np.array([[-1]])})


def test_dataset_info_mismatch_names_the_field():
    info = {"vocab_size": 30522, "max_seq_length": 128}
    check_dataset_info(info, "d", vocab_size=30522, max_seq_length=128)
    with pytest.raises(
        ValueError, match="max_seq_length=128 but the training run uses max_seq_length=64"
    ):
        check_dataset_info(info, "d", vocab_size=30522, max_seq_length=64)
    with pytest.raises(ValueError, match="vocab_size"):
        check_dataset_info(info, "d", vocab_size=8192, max_seq_length=128)


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_written_records_read_back_with_tensorflow(tmp_path, compression):
    # Empty, short and > 64 KiB records (the length is framed as 8 bytes).
    records = [b"", b"x", bytes(range(256)) * 300, *encode_examples({"a": np.arange(12)[:, None]})]
    path = str(tmp_path / "r.tfrecord")
    with TFRecordWriter(path, compression) as w:
        for r in records:
            w.write(r)
    kind = "GZIP" if compression else ""
    got = [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type=kind)]
    assert got == records
    # TensorFlow's own writer gives the same uncompressed bytes.
    if compression is None:
        ref = str(tmp_path / "ref.tfrecord")
        with tf.io.TFRecordWriter(ref) as w:
            for r in records:
                w.write(r)
        assert pathlib.Path(path).read_bytes() == pathlib.Path(ref).read_bytes()
    # A flipped data byte is caught by TensorFlow's checksum.
    if compression is None:
        raw = bytearray(pathlib.Path(path).read_bytes())
        raw[(8 + 4 + 0 + 4) + (8 + 4 + 1 + 4) + (8 + 4)] ^= 1  # the third record's first byte
        pathlib.Path(path).write_bytes(bytes(raw))
        with pytest.raises(tf.errors.DataLossError):
            list(tf.data.TFRecordDataset(path))


def test_gzip_output_is_deterministic(tmp_path):
    paths = [str(tmp_path / f"{i}.tfrecord.gz") for i in range(2)]
    for p in paths:
        with TFRecordWriter(p, "gzip") as w:
            w.write(b"same")
    assert pathlib.Path(paths[0]).read_bytes() == pathlib.Path(paths[1]).read_bytes()
