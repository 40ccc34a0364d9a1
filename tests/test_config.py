import json

import pytest

from electra_tf.config import PRESETS, ElectraConfig


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    config = ElectraConfig.from_preset(name)
    assert ElectraConfig.from_json(config.to_json()) == config


def test_generator_sizes_follow_the_reference_rule():
    small = ElectraConfig.from_preset("small")
    assert (small.generator_hidden_size, small.generator_num_heads) == (64, 1)
    assert small.generator_intermediate_size == 256
    base = ElectraConfig.from_preset("base")
    # Released electra-base-generator: hidden 256, 4 heads, FFN 1024.
    assert (base.generator_hidden_size, base.generator_num_heads) == (256, 4)
    assert base.generator_intermediate_size == 1024
    large = ElectraConfig.from_preset("large")
    assert (large.generator_hidden_size, large.generator_num_layers) == (256, 24)


def test_overrides_and_explicit_generator_sizes():
    config = ElectraConfig.from_preset("small", generator_fraction=1.0, vocab_size=100)
    assert config.generator_hidden_size == 256 and config.vocab_size == 100


def test_bad_fields_name_the_field(tmp_path):
    with pytest.raises(ValueError, match="num_heads"):
        ElectraConfig.from_preset("small", num_heads=3)
    with pytest.raises(ValueError, match="Unknown ElectraConfig field"):
        ElectraConfig.from_preset("small", hidden=3)
    with pytest.raises(ValueError, match="Unknown model size"):
        ElectraConfig.from_preset("huge")
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"vocab_size": -1}))
    with pytest.raises(ValueError, match="vocab_size"):
        ElectraConfig.load(str(bad))


def test_save_is_atomic_and_loadable(tmp_path):
    config = ElectraConfig.from_preset("tiny", vocab_size=77)
    config.save(str(tmp_path / "electra_config.json"))
    assert ElectraConfig.load_from_dir(str(tmp_path)) == config
    assert [p.name for p in tmp_path.iterdir()] == ["electra_config.json"]
