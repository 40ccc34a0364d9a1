"""Chunking, compressed inputs, giant lines, invalid UTF-8, documents."""

import bz2
import gzip

import pytest

from data_prep import text_source


def _read_all(paths, chunk_bytes):
    reader = text_source.ChunkReader()
    chunks = text_source.plan_chunks(paths, chunk_bytes)
    parts = [reader.read(c) for c in chunks]
    reader.close()
    return chunks, parts, reader


def test_chunks_cover_every_byte_of_plain_gz_and_bz2(tmp_path):
    text = "".join(f"Line {i} has some words. And another sentence!\n" for i in range(3000))
    text += "\n" + ("word " * 20000) + "\n"  # one long line
    plain = tmp_path / "a.txt"
    plain.write_text(text)
    gz = tmp_path / "b.txt.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    bz = tmp_path / "c.bz2"
    bz.write_bytes(bz2.compress(text.encode()))
    for path in (plain, gz, bz):
        chunks, parts, _ = _read_all([str(path)], 8192)
        assert len(chunks) > 10
        assert "".join(parts) == text
        assert all(c.length <= 8192 for c in chunks)


def test_a_giant_line_without_spaces_is_cut_on_character_boundaries(tmp_path):
    text = "é" * 50000  # two bytes each, no whitespace
    path = tmp_path / "x.txt"
    path.write_text(text)
    _, parts, reader = _read_all([str(path)], 4096)
    assert "".join(parts) == text and reader.utf8.count == 0


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good text \xff\xfe more text \xc3\x28 end\n")
    _, parts, reader = _read_all([str(path)], 4096)
    assert reader.utf8.count == 3
    assert "good text" in parts[0] and "\ufffd" in parts[0]


def test_documents_and_sentences():
    text = "First sentence. Second one!\nSame doc line.\n\n\nNew doc? Yes.\n"
    docs = list(text_source.documents(text))
    assert docs == [["First sentence.", "Second one!", "Same doc line."], ["New doc?", "Yes."]]
    long = "x " * 3000
    pieces = text_source.split_sentences(long)
    assert all(len(p) <= text_source.MAX_SENTENCE_CHARS for p in pieces)
    assert "".join(p.replace(" ", "") for p in pieces) == long.replace(" ", "")


def test_globs_errors_name_the_glob(tmp_path):
    with pytest.raises(text_source.InputError, match="matches no file"):
        text_source.expand_globs(str(tmp_path / "nothing*.txt"))
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.txt").write_text("a")
    files = text_source.expand_globs(f"{tmp_path}/*.txt,{tmp_path}/a.txt")
    assert [f.rsplit("/", 1)[1] for f in files] == ["a.txt", "b.txt"]
