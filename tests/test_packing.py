import random

import numpy as np

from data_prep.packing import SequencePacker


def test_packing_keeps_every_token_and_respects_length():
    rng = np.random.default_rng(0)
    sentences = [rng.integers(1000, 2000, rng.integers(1, 90)).astype(np.int32) for _ in range(400)]
    sentences.append(np.arange(5000, 5400, dtype=np.int32))  # longer than a sequence
    packer = SequencePacker(64, cls_id=101, sep_id=102, rng=random.Random(1))
    seqs = packer.pack_document(sentences)
    text = []
    single = 0
    for ids, len_a in seqs:
        assert len(ids) <= 64 and ids[0] == 101 and ids[len_a - 1] == 102 and ids[-1] == 102
        body = [t for t in ids if t not in (101, 102)]
        assert len(body) == len(ids) - (2 if len_a == len(ids) else 3)
        single += len_a == len(ids)
        text.extend(body)
    # Nothing lost or duplicated. (Like the reference, a short sentence may
    # join segment A after B has started, so order within a sequence can vary.)
    np.testing.assert_array_equal(np.sort(np.array(text)), np.sort(np.concatenate(sentences)))
    assert 0 < single < len(seqs)  # both single- and two-segment sequences occur
