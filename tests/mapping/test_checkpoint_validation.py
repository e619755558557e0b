"""Inconsistent checkpoints are refused at the edge, every problem listed in one error.

Each case is a small real checkpoint (transformers' own save_pretrained) whose
safetensors header or config.json is then edited the way a broken converter,
a truncated download or a hostile file would; before this check each of them
compressed with exit 0, some reading bytes of neighbouring tensors.
"""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from llmaccel.cli import main
from llmaccel.mapping.checkpoint import CheckpointError, SafetensorsCheckpoint
from llmaccel.mapping.compress import compress_checkpoint
from llmaccel.mapping.recipe import get_recipe

K_PROJ = "model.layers.0.self_attn.k_proj.weight"       # [64, 128] in the tiny checkpoint (2 KV heads x 32)
Q_PROJ = "model.layers.0.self_attn.q_proj.weight"       # [128, 128]


def _split(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _join(path: Path, header: dict, data: bytes) -> None:
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)


def _broken(src: Path, root: Path, edit_header=None, edit_config=None, edit_data=None) -> Path:
    d = root / "bad"
    shutil.copytree(src, d)
    st = d / "model.safetensors"
    header, data = _split(st)
    if edit_header:
        edit_header(header)
    if edit_data:
        data = edit_data(data)
    _join(st, header, data)
    if edit_config:
        cfg = json.loads((d / "config.json").read_text())
        edit_config(cfg)
        (d / "config.json").write_text(json.dumps(cfg))
    return d


def _refused(d: Path, *needles: str) -> str:
    with pytest.raises(CheckpointError) as exc:
        SafetensorsCheckpoint(d)
    msg = str(exc.value)
    for n in needles:
        assert n in msg, msg
    return msg


def _set(name, key, value):
    return lambda h: h[name].__setitem__(key, value)


def test_the_real_checkpoint_opens(tiny_checkpoint):
    ck = SafetensorsCheckpoint(tiny_checkpoint)
    assert ck.spec.num_layers == 2 and ck.shape(K_PROJ) == (64, 128)


@pytest.mark.parametrize("edit, needles", [
    # F32 -> F16 over the same bytes: the byte range no longer equals dtype x shape
    (_set(K_PROJ, "dtype", "F16"), ["dtype F16 x shape [64, 128] is 16384 bytes but data_offsets", "span 32768"]),
    # same width, wrong kind: integers are not weights
    (_set(K_PROJ, "dtype", "I32"), ["has dtype 'I32'; allowed: ['BF16', 'F16', 'F32', 'F64']"]),
    (_set(K_PROJ, "dtype", "F8_E4M3"), ["has dtype 'F8_E4M3'"]),
    (_set(K_PROJ, "data_offsets", [-32768, 0]), ["data_offsets [-32768, 0]; expected 0 <= begin <= end"]),
    (_set(K_PROJ, "shape", [64, -128]), ["shape [64, -128]"]),
    (_set(K_PROJ, "shape", [128, 64]), [f"'{K_PROJ}' is [128, 64], config.json implies [64, 128] (transposed?)"]),
    (lambda h: h.__setitem__(K_PROJ, dict(h[K_PROJ], extra=1)), ["must have exactly the fields"]),
])
def test_a_bad_header_field_is_named(edit, needles, tiny_checkpoint, tmp_path):
    _refused(_broken(tiny_checkpoint, tmp_path, edit_header=edit), K_PROJ, *needles)


def test_overlapping_byte_ranges_are_refused(tiny_checkpoint, tmp_path):
    def overlap(h):
        h[K_PROJ]["data_offsets"] = list(h[Q_PROJ]["data_offsets"][:1]) + [h[Q_PROJ]["data_offsets"][0] + 32768]
    msg = _refused(_broken(tiny_checkpoint, tmp_path, edit_header=overlap), "overlap")
    assert "belong to no tensor" in msg          # and the hole it left is named too


def test_a_truncated_file_is_refused(tiny_checkpoint, tmp_path):
    _refused(_broken(tiny_checkpoint, tmp_path, edit_data=lambda d: d[:-4096]), "is truncated: tensor",
             "ends at byte")


def test_trailing_bytes_are_refused(tiny_checkpoint, tmp_path):
    _refused(_broken(tiny_checkpoint, tmp_path, edit_data=lambda d: d + b"\0" * 64),
             "64 bytes after the last tensor belong to no tensor")


def test_hidden_size_over_narrower_tensors_is_refused(tiny_checkpoint, tmp_path):
    d = _broken(tiny_checkpoint, tmp_path, edit_config=lambda c: c.update(hidden_size=256))
    _refused(d, "tensors whose shape disagrees with config.json", "'model.embed_tokens.weight' is [256, 128], "
             "config.json implies [256, 256]")


def test_a_config_with_fewer_layers_than_stored_is_refused(llama_checkpoint, tmp_path):
    ck = llama_checkpoint(tmp_path / "four", layers=4)
    cfg = json.loads((ck / "config.json").read_text())
    cfg["num_hidden_layers"] = 2
    (ck / "config.json").write_text(json.dumps(cfg))
    _refused(ck, "config.json says num_hidden_layers=2 but the checkpoint stores layers 0..3")


def test_missing_and_extra_tensors_are_named(tiny_checkpoint, tmp_path):
    def edit(h):
        h["model.layers.0.mlp.gate_proj.bias"] = h.pop("model.layers.1.mlp.up_proj.weight")
    _refused(_broken(tiny_checkpoint, tmp_path, edit_header=edit),
             "missing: 'model.layers.1.mlp.up_proj.weight'", "does not explain: 'model.layers.0.mlp.gate_proj.bias'")


def test_every_problem_is_reported_in_one_run(tiny_checkpoint, tmp_path):
    def edit(h):
        h[K_PROJ]["shape"] = [128, 64]                                        # transposed
        h["model.layers.1.self_attn.v_proj.weight"]["dtype"] = "I32"           # not a weight dtype
        h["model.layers.0.mlp.extra.weight"] = h.pop("model.layers.1.mlp.down_proj.weight")   # renamed
    _refused(_broken(tiny_checkpoint, tmp_path, edit_header=edit), "4 problems",
             "model.layers.1.self_attn.v_proj.weight' has dtype 'I32'", "(transposed?)",
             "missing: 'model.layers.1.mlp.down_proj.weight'", "does not explain: 'model.layers.0.mlp.extra.weight'")


def test_duplicate_keys_in_the_header_are_refused(tiny_checkpoint, tmp_path):
    d = tmp_path / "dup"
    shutil.copytree(tiny_checkpoint, d)
    st = d / "model.safetensors"
    raw = st.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    text = raw[8:8 + n].decode()
    entry = json.dumps({"dtype": "F32", "shape": [1], "data_offsets": [0, 4]})
    text = text.replace("{", '{"model.norm.weight": ' + entry + ", ", 1)
    blob = text.encode() + b" " * (-len(text) % 8)
    st.write_bytes(struct.pack("<Q", len(blob)) + blob + raw[8 + n:])
    _refused(d, "duplicate key 'model.norm.weight'")


def test_an_index_naming_a_file_outside_the_directory_is_refused(tiny_checkpoint, tmp_path):
    d = tmp_path / "sharded"
    shutil.copytree(tiny_checkpoint, d)
    header, _ = _split(d / "model.safetensors")
    wm = {n: "model.safetensors" for n in header if n != "__metadata__"}
    wm[K_PROJ] = "../../outside.safetensors"
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wm}))
    _refused(d, "the index names shard '../../outside.safetensors', which is not a file name",
             "tensors the index places in another shard: '" + K_PROJ)


def test_the_cli_refuses_a_bad_checkpoint_with_one_error_and_writes_nothing(tiny_checkpoint, tmp_path, capsys):
    d = _broken(tiny_checkpoint, tmp_path, edit_header=_set(K_PROJ, "shape", [128, 64]))
    rc = main(["compress", "--model", str(d), "--recipe", "w8", "--out", str(tmp_path / "o"), "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "transposed" in json.loads(lines[0])["error"]
    assert not (tmp_path / "o").exists()
    with pytest.raises(CheckpointError):
        compress_checkpoint(d, get_recipe("w8"), tmp_path / "o2")
