"""Configs are validated once, at the edge: each silently accepted or crashing YAML of issue 11 is one error.

Every file here is a bundled preset with one field made hostile, loaded the way the CLI loads it.
"""
from __future__ import annotations

import json

import pytest
import yaml

from llmaccel.mapping.recipe import get_recipe
from llmaccel.simulator.design import load_design
from llmaccel.simulator.specs import SpecError, load_device, load_model_spec
from llmaccel.simulator.specs._yaml import PRESETS_DIR, safe_load_strict
from llmaccel.simulator.specs.schema import loads_strict_json, unit_problem

DESIGN = PRESETS_DIR / "designs" / "flightllm-u280.yaml"
MODEL = PRESETS_DIR / "models" / "tiny.yaml"
DEVICE = PRESETS_DIR / "devices" / "alveo-u280.yaml"


def _write(tmp_path, name, data) -> str:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False) if not isinstance(data, str) else data)
    return str(p)


def _preset(path):
    return yaml.safe_load(path.read_text())


def test_clock_in_hz_where_mhz_is_asked_names_the_unit(tmp_path):
    d = _preset(DESIGN)
    d["clock_MHz"] = 225_000_000
    with pytest.raises(SpecError, match=r"clock_MHz.*not a plausible value in MHz.*looks like a value in Hz"
                                        r".*write 225"):
        load_design(_write(tmp_path, "hz.yaml", d))


def test_clock_in_ghz_where_mhz_is_asked_is_refused(tmp_path):
    d = _preset(DESIGN)
    d["clock_MHz"] = 0.225
    with pytest.raises(SpecError, match=r"clock_MHz.*looks like a value in GHz"):
        load_design(_write(tmp_path, "ghz.yaml", d))


def test_bandwidth_in_bytes_per_second_is_refused(tmp_path):
    d = _preset(DEVICE)
    d["hbm"]["total_GBps"] = 460e9
    with pytest.raises(SpecError, match=r"hbm.total_GBps.*not a plausible value in GB/s"):
        load_device(_write(tmp_path, "bps.yaml", d))


def test_plausible_values_of_every_bundled_preset_pass():
    # The presets are real parts; if a unit rule refused one, the rule (not the part) is wrong.
    from llmaccel.simulator.design import list_designs
    from llmaccel.simulator.specs import list_devices, list_models
    for n in list_designs():
        load_design(n)
    for n in list_devices():
        load_device(n)
    for n in list_models():
        load_model_spec(n)
    assert unit_problem("clock_MHz", 225.0) is None and unit_problem("clock_MHz", 225e6) is not None


def test_duplicate_key_is_refused_with_both_lines(tmp_path):
    text = DESIGN.read_text() + "\ncores: 4\n"
    with pytest.raises(SpecError, match=r"duplicate key 'cores' at line \d+ \(first at line \d+\)"):
        load_design(_write(tmp_path, "dup.yaml", text))


def test_duplicate_key_in_a_nested_block_is_refused(tmp_path):
    text = "name: x\nattn:\n  bits: 4\n  bits: 8\nmlp: {bits: 4}\n"
    with pytest.raises(SpecError, match=r"duplicate key 'bits' at line 4"):
        get_recipe(_write(tmp_path, "dup-recipe.yaml", text))


def test_merge_keys_are_overrides_not_duplicates():
    data = safe_load_strict("base: &b {bits: 4, group_size: 64}\nattn:\n  <<: *b\n  bits: 8\n")
    assert data["attn"] == {"bits": 8, "group_size": 64}


def test_quoted_false_is_not_true(tmp_path):
    # Before: LayerRule(symmetric="false") kept the string, which is truthy: a symmetric grid.
    text = "name: q\nattn: {bits: 4, symmetric: \"false\"}\nmlp: {bits: 4}\n"
    with pytest.raises(SpecError, match=r"attn.symmetric' must be true or false, got 'false' \(a quoted string"):
        get_recipe(_write(tmp_path, "sym.yaml", text))


def test_number_as_a_string_is_an_error_not_a_crash(tmp_path):
    # Before: TypeError ('<=' not supported between 'str' and 'int') from LayerRule.__post_init__.
    text = "name: q\nattn: {bits: 4, group_size: \"128\"}\nmlp: {bits: 4}\n"
    with pytest.raises(SpecError, match=r"attn.group_size' must be an integer, got '128' \(a quoted string"):
        get_recipe(_write(tmp_path, "gs.yaml", text))
    m = _preset(MODEL)
    m["hidden_size"] = "64"
    with pytest.raises(SpecError, match=r"hidden_size' must be an integer, got '64'"):
        load_model_spec(_write(tmp_path, "hs.yaml", m))


def test_infinite_rope_theta_is_refused(tmp_path):
    text = MODEL.read_text().replace("rope_theta:", "rope_theta: .inf\nx_old_rope_theta:")
    m = yaml.safe_load(text)
    m.pop("x_old_rope_theta")
    assert m["rope_theta"] == float("inf")
    with pytest.raises(SpecError, match=r"rope_theta' must be a finite number, got inf"):
        load_model_spec(_write(tmp_path, "inf.yaml", m))


def test_fractional_count_is_refused(tmp_path):
    text = "name: q\nattn: {bits: 4}\nmlp: {bits: 4}\ncalibration_tokens: 100.5\n"
    with pytest.raises(SpecError, match=r"calibration_tokens' must be an integer, got 100.5 \(a fraction"):
        get_recipe(_write(tmp_path, "ct.yaml", text))


def test_every_problem_is_listed_at_once(tmp_path):
    d = _preset(DESIGN)
    d["clock_MHz"] = 225_000_000
    d["cores"] = "2"
    d["turbo"] = True
    d["matrix_engine"]["chains_per_core"] = 1.5
    with pytest.raises(SpecError) as info:
        load_design(_write(tmp_path, "many.yaml", d))
    err = info.value
    assert "4 problems" in str(err) and len(err.problems) == 4
    for field in ("clock_MHz", "'cores'", "turbo", "matrix_engine.chains_per_core"):
        assert any(field in p for p in err.problems), (field, err.problems)


def test_exponent_without_a_dot_is_a_number():
    # PyYAML (YAML 1.1) reads 1e6 as the string "1e6"; YAML 1.2 and every other tool as a number.
    assert safe_load_strict("rope_theta: 1e6\neps: 1.0e-5\nn: 12\n") == {"rope_theta": 1e6, "eps": 1e-5, "n": 12}


@pytest.mark.parametrize("text, match", [
    ('{"hidden_size": 64, "hidden_size": 128}', "duplicate key 'hidden_size'"),
    ('{"rope_theta": Infinity}', "Infinity is not a number JSON allows"),
    ('{"rms_norm_eps": NaN}', "NaN is not a number JSON allows"),
])
def test_config_json_is_read_strictly(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        loads_strict_json(text)
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "config.json").write_text(text)
    with pytest.raises(SpecError, match=match):
        load_model_spec(d)


def test_config_json_quoted_boolean_is_refused(tmp_path):
    cfg = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
           "num_attention_heads": 4, "vocab_size": 256, "max_position_embeddings": 128,
           "tie_word_embeddings": "false"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SpecError, match=r"tie_word_embeddings' must be true or false"):
        load_model_spec(tmp_path / "config.json")


def test_yaml_that_is_not_utf8_or_has_a_bad_date_is_one_error(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SpecError, match="not UTF-8 text"):
        load_design(str(p))
    with pytest.raises(SpecError, match="malformed YAML"):
        load_design(_write(tmp_path, "date.yaml", "name: x\nwhen: 2024-02-30\n"))


def test_rope_scaling_parameters_are_numbers(tmp_path):
    m = _preset(PRESETS_DIR / "models" / "llama-3.2-1b.yaml")
    assert m["rope_scaling"]["factor"] == 32.0
    m["rope_scaling"]["factor"] = "32.0"
    with pytest.raises(SpecError, match=r"rope_scaling.factor='32.0' must be a number"):
        load_model_spec(_write(tmp_path, "rs.yaml", m))
    m["rope_scaling"]["factor"] = [1.0, 2.0]
    with pytest.raises(SpecError, match=r"rope_scaling.factor=\[1.0, 2.0\] must be a number"):
        load_model_spec(_write(tmp_path, "rs2.yaml", m))


def test_nm_pattern_zero_zero_is_refused(tmp_path):
    d = _preset(DESIGN)
    d["matrix_engine"]["supported_nm"] = ["dense", "0:0"]
    with pytest.raises(SpecError, match=r"0 < N <= M"):
        load_design(_write(tmp_path, "nm.yaml", d))


def test_power_coefficients_are_finite(tmp_path):
    from llmaccel.simulator.power import DEFAULT_POWER_YAML, load_power_coefficients
    e = _preset(DEFAULT_POWER_YAML)
    e["fabrics"]["ultrascale_plus"]["dsp_pJ_per_cycle_full_toggle"]["value"] = float("inf")
    with pytest.raises(SpecError, match=r"dsp_pJ_per_cycle_full_toggle: value inf must be a finite number"):
        load_power_coefficients("alveo-u280", _write(tmp_path, "p.yaml", e))