"""One strict JSON reader (llmaccel.strict_json) behind every user JSON file: config.json, a
checkpoint's safetensors header and index, an artifact's manifest, a GPU measurement file.

Each defect Python's json would let through (a key twice, NaN, Infinity, -Infinity, 1e999) or
trip over (bytes that are not UTF-8, a list where an object belongs) is one error of the
caller's LlmaccelError subclass naming the file and the field, never a traceback.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from llmaccel import strict_json
from llmaccel.errors import LlmaccelError
from llmaccel.mapping.artifact_io import ArtifactError, read_manifest
from llmaccel.mapping.checkpoint import CheckpointError, SafetensorsCheckpoint
from llmaccel.simulator.specs import SpecError, load_model_spec

REPO = Path(__file__).resolve().parents[2]

# (name, replace the text of a valid object's field, what the one error must say)
DEFECTS = [
    ("duplicate", lambda t: t.replace('"hidden_size": 128', '"hidden_size": 128, "hidden_size": 64'),
     "duplicate key 'hidden_size'"),
    ("nested-duplicate", lambda t: t.replace('"rope_type": "default"', '"rope_type": "default", "rope_type": "yarn"'),
     "duplicate key 'rope_parameters.rope_type'"),
    ("nan", lambda t: t.replace('"rms_norm_eps": 1e-05', '"rms_norm_eps": NaN'),
     "field 'rms_norm_eps': NaN is not a number JSON allows"),
    ("infinity", lambda t: t.replace('"rope_theta": 10000.0', '"rope_theta": Infinity'),
     "field 'rope_parameters.rope_theta': Infinity is not a number JSON allows"),
    ("minus-infinity", lambda t: t.replace('"rope_theta": 10000.0', '"rope_theta": -Infinity'),
     "field 'rope_parameters.rope_theta': -Infinity is not a number JSON allows"),
    ("overflow", lambda t: t.replace('"rope_theta": 10000.0', '"rope_theta": 1e999'),
     "field 'rope_parameters.rope_theta': 1e999 is too large"),
    ("not-utf8", lambda t: t.replace('"llama"', '"llam\udce9"'), "not UTF-8 text (byte "),
    ("top-level-list", lambda t: "[" + t + "]", "holds a JSON list, expected an object"),
]


def _config_text(tiny_checkpoint: Path) -> str:
    text = json.dumps(json.loads((tiny_checkpoint / "config.json").read_text()))
    for needle in ('"hidden_size": 128', '"rms_norm_eps": 1e-05', '"rope_parameters": {"rope_theta": 10000.0',
                   '"rope_type": "default"', '"llama"'):
        assert needle in text, needle          # the fixtures below edit these; a changed fixture must fail here
    return text


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8", "surrogateescape"))   # \udce9 -> the lone byte 0xE9
    return path


@pytest.mark.parametrize("name, defect, needle", DEFECTS, ids=[d[0] for d in DEFECTS])
def test_each_defect_is_one_error_naming_file_and_field_at_every_site(name, defect, needle, tiny_checkpoint,
                                                                      tmp_path):
    bad = defect(_config_text(tiny_checkpoint))
    # 1. the model spec loader (simulate --model <config.json>)
    cfg = _write(tmp_path / "config.json", bad)
    with pytest.raises(SpecError) as e1:
        load_model_spec(cfg)
    # 2. the checkpoint reader (compress --model <dir>)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").symlink_to(tiny_checkpoint / "model.safetensors")
    _write(ckpt / "config.json", bad)
    with pytest.raises(CheckpointError) as e2:
        SafetensorsCheckpoint(ckpt)
    # 3. an artifact's manifest (compile --model <artifact>, run --artifact <artifact>)
    art = tmp_path / "art"
    art.mkdir()
    _write(art / "manifest.json", bad)
    with pytest.raises(ArtifactError) as e3:
        read_manifest(art, "llmaccel-compressed", 1)
    for exc, where in ((e1, str(cfg)), (e2, str(ckpt / "config.json")), (e3, "manifest.json")):
        msg = str(exc.value)
        assert where in msg and needle in msg, msg
        assert "\n" not in msg, msg                          # one line


def test_a_nan_in_a_safetensors_header_names_the_tensor_and_index(tiny_checkpoint, tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "config.json").write_bytes((tiny_checkpoint / "config.json").read_bytes())
    raw = (tiny_checkpoint / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = raw[8:8 + n].decode()
    start = header.index('"model.norm.weight"')
    at = header.index('"data_offsets":[', start) + len('"data_offsets":[')
    header = header[:at] + "NaN" + header[header.index(",", at):]
    blob = header.encode() + b" " * (-len(header) % 8)
    (d / "model.safetensors").write_bytes(struct.pack("<Q", len(blob)) + blob + raw[8 + n:])
    with pytest.raises(CheckpointError) as exc:
        SafetensorsCheckpoint(d)
    assert ("'model.safetensors' safetensors header: field 'model.norm.weight.data_offsets[0]': NaN"
            in str(exc.value)), str(exc.value)


def test_a_sharded_index_is_read_strictly(tiny_checkpoint, tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "config.json").write_bytes((tiny_checkpoint / "config.json").read_bytes())
    (d / "model.safetensors").symlink_to(tiny_checkpoint / "model.safetensors")
    (d / "model.safetensors.index.json").write_text(
        '{"weight_map": {"lm_head.weight": "model.safetensors", "lm_head.weight": "other.safetensors"}}')
    with pytest.raises(CheckpointError, match=r"index\.json: duplicate key 'weight_map\.lm_head\.weight'"):
        SafetensorsCheckpoint(d)


def test_a_gpu_measurement_file_is_read_strictly(tmp_path):
    sys.path.insert(0, str(REPO / "tests" / "gpu_baseline"))
    try:
        from gpu_measurement_fixture import measurement_dict
    finally:
        sys.path.pop(0)
    from llmaccel.gpu_baseline.measured import MeasurementError, parse_measurement
    d = measurement_dict()
    d["copy_bandwidth"]["GBps"] = 1234.5
    text = json.dumps(d).replace("1234.5", "Infinity")
    (tmp_path / "a100.json").write_text(text)
    with pytest.raises(MeasurementError, match=r"a100\.json: field 'copy_bandwidth\.GBps': Infinity is not"):
        parse_measurement(tmp_path / "a100.json")


@pytest.mark.parametrize("text, needle", [
    ('{"a": [1, {"b": 1, "b": 2}]}', "duplicate key 'a[1].b'"),
    ("NaN", "field '(top level)': NaN"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"n": ' + "9" * 5000 + "}", "field 'n': an integer of 5000 digits"),
    ('{"a": 1,}', "malformed JSON at line 1, column 9"),
    ('\ufeff{"a": 1}', "malformed JSON"),
])
def test_loads_refuses_what_python_json_would_accept_or_crash_on(text, needle):
    class Mine(LlmaccelError):
        pass
    with pytest.raises(Mine) as exc:
        strict_json.loads(text, "x.json", Mine)
    assert str(exc.value).startswith("x.json: ") and needle in str(exc.value), str(exc.value)


def test_loads_keeps_good_json_as_python_json_reads_it():
    text = '{"a": [1, 2.5, -3e-2, true, null, "s"], "b": {"c": {}}, "d": 12345678901234567890}'
    assert strict_json.loads(text) == json.loads(text)
    assert strict_json.loads(text.encode()) == json.loads(text)


def test_the_cli_prints_one_line_and_exits_2(tiny_checkpoint, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(_config_text(tiny_checkpoint).replace('"rope_theta": 10000.0', '"rope_theta": Infinity'))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "llmaccel", "simulate", "--model", str(cfg), "--json"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    err = json.loads(proc.stdout.strip().splitlines()[-1])["error"]
    assert str(cfg) in err and "field 'rope_parameters.rope_theta': Infinity" in err, err


def test_a_tokenizer_config_is_read_strictly_before_transformers_reads_it(tmp_path):
    from llmaccel.assets import bundled_model_dir
    from llmaccel.mapping.checkpoint import load_local_tokenizer
    d = tmp_path / "tok"
    d.mkdir()
    for f in bundled_model_dir().iterdir():
        if f.name.startswith(("tokenizer", "special_tokens")):
            (d / f.name).write_bytes(f.read_bytes())
    load_local_tokenizer(d)                                    # the copy loads as it is
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    text = json.dumps(cfg)[:-1] + ', "model_max_length": 512, "model_max_length": 1}'
    (d / "tokenizer_config.json").write_text(text)
    with pytest.raises(CheckpointError, match=r"tokenizer_config\.json: duplicate key 'model_max_length'"):
        load_local_tokenizer(d)
