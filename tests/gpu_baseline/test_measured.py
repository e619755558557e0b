"""The measurement schema: a good file loads; each kind of bad file gives one error naming file and field."""
import json

import pytest

from llmaccel.gpu_baseline.measured import (GpuMeasurement, MeasurementError, load_measurements, parse_measurement,
                                   preset_for_gpu_name, write_measurement)
from gpu_measurement_fixture import measurement_dict, write_json


def test_good_file_loads_with_every_figure(tmp_path):
    write_json(tmp_path, "a100.json", measurement_dict())
    (m,) = load_measurements(tmp_path)
    assert isinstance(m, GpuMeasurement)
    assert m.source_file == "a100.json"
    assert m.gpu.device_preset == "a100-sxm-80gb"
    (dec,) = m.runs_of("decode", "llama2-7b", "w4-g128-rtn")
    assert dec.ms_per_token == 4.0 and dec.tokens == 512 and dec.energy_J == 614.4
    assert m.runs_of("prefill")[0].tokens == 512
    assert m.kernels[0].shape["out_features"] == 4096
    assert m.idle_power.W == 60.0 and m.copy_bandwidth.GBps == 1600.0


def test_device_filter_and_order(tmp_path):
    write_json(tmp_path, "b.json", measurement_dict(date="2026-12-02T00:00:00Z"))
    write_json(tmp_path, "a.json", measurement_dict(date="2026-12-03T00:00:00Z"))
    other = measurement_dict()
    other["gpu"] = dict(other["gpu"], name="NVIDIA H100 80GB HBM3", device_preset="h100-sxm-80gb")
    write_json(tmp_path, "c.json", other)
    assert [m.source_file for m in load_measurements(tmp_path, device="a100-sxm-80gb")] == ["b.json", "a.json"]
    assert [m.source_file for m in load_measurements(tmp_path, device="h100-sxm-80gb")] == ["c.json"]
    assert load_measurements(tmp_path, device="v100s-pcie-32gb") == []


def _bad(tmp_path, mutate):
    d = measurement_dict()
    mutate(d)
    write_json(tmp_path, "bad.json", d)
    with pytest.raises(MeasurementError) as ei:
        load_measurements(tmp_path)
    msg = str(ei.value)
    assert "bad.json" in msg
    return msg


def test_figure_not_tagged_measured(tmp_path):
    msg = _bad(tmp_path, lambda d: d["runs"][0].update(provenance="modelled"))
    assert "runs.0.provenance" in msg and "measured" in msg


def test_missing_field(tmp_path):
    msg = _bad(tmp_path, lambda d: d["gpu"].pop("driver_version"))
    assert "gpu.driver_version" in msg and "required" in msg.lower()


def test_unknown_field(tmp_path):
    msg = _bad(tmp_path, lambda d: d["runs"][1].update(tokens_per_sec=1.0))
    assert "runs.1.tokens_per_sec" in msg


def test_device_preset_must_be_a_gpu_preset(tmp_path):
    msg = _bad(tmp_path, lambda d: d["gpu"].update(device_preset="alveo-u280"))
    assert "gpu.device_preset" in msg and "a100-sxm-80gb" in msg


def test_inconsistent_tokens_per_s(tmp_path):
    # 4 ms/token is 250 tokens/s, not 25
    msg = _bad(tmp_path, lambda d: d["runs"][0].update(tokens_per_s=25.0))
    assert "runs.0" in msg and "tokens_per_s" in msg


def test_energy_in_mJ_is_caught(tmp_path):
    # 614.4 J written as mJ: tokens_per_J and power no longer agree with it
    msg = _bad(tmp_path, lambda d: d["runs"][0].update(energy_J=614400.0, tokens_per_J=512 / 614400.0))
    assert "runs.0" in msg and "avg_power_W" in msg


def test_partial_energy(tmp_path):
    msg = _bad(tmp_path, lambda d: d["runs"][0].update(tokens_per_J=None))
    assert "runs.0" in msg and "together" in msg


def test_copy_share_checked(tmp_path):
    msg = _bad(tmp_path, lambda d: d["copy_bandwidth"].update(share_of_peak=0.95))
    assert "copy_bandwidth" in msg and "share_of_peak" in msg


def test_kernel_share_of_copy_checked(tmp_path):
    msg = _bad(tmp_path, lambda d: d["kernels"][0].update(share_of_copy=0.9))
    assert "kernels.0.share_of_copy" in msg


def test_kernel_GBps_checked(tmp_path):
    msg = _bad(tmp_path, lambda d: d["kernels"][0].update(GBps=120.0, share_of_copy=0.075))
    assert "kernels.0" in msg and "GBps" in msg


def test_naive_date_rejected(tmp_path):
    msg = _bad(tmp_path, lambda d: d.update(date="2026-12-01T09:30:00"))
    assert "'date'" in msg and "time zone" in msg


def test_malformed_json_names_file_and_line(tmp_path):
    (tmp_path / "broken.json").write_text('{"schema_version": 1,\n "gpu": }')
    with pytest.raises(MeasurementError, match=r"broken\.json: malformed JSON at line 2"):
        load_measurements(tmp_path)


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(MeasurementError, match="not found"):
        load_measurements(tmp_path / "nope")


def test_write_round_trip_atomic_and_no_overwrite(tmp_path):
    write_json(tmp_path / "in", "x.json", measurement_dict())
    m = parse_measurement(tmp_path / "in" / "x.json")
    out = write_measurement(m, tmp_path / "out" / "y.json")
    assert "source_file" not in json.loads(out.read_text())
    assert parse_measurement(out).model_dump(exclude={"source_file"}) == m.model_dump(exclude={"source_file"})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["y.json"]   # no temporary left behind
    with pytest.raises(MeasurementError, match="never overwritten"):
        write_measurement(m, out)


def test_nvml_names_map_to_presets():
    assert preset_for_gpu_name("NVIDIA H100 80GB HBM3") == "h100-sxm-80gb"
    assert preset_for_gpu_name("NVIDIA A100-SXM4-80GB") == "a100-sxm-80gb"
    assert preset_for_gpu_name("NVIDIA A100-PCIE-40GB") == "a100-pcie-40gb"
    assert preset_for_gpu_name("NVIDIA H200 NVL") is None
    assert preset_for_gpu_name("NVIDIA GeForce RTX 4090") is None
