"""Custom designs are first-class: the artifact stores the whole design, so it runs without the YAML;
the bundled 2:4 design compiles and runs the 2:4 recipe."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from llmaccel.cli import main
from llmaccel.mapping.artifact_io import ArtifactError, manifest_hash
from llmaccel.simulator.design import BUNDLED_DESIGNS, design_sha256, load_design

PROMPT = [3, 17, 42, 5]


@pytest.fixture(scope="module")
def compressed_24(llama_checkpoint, tmp_path_factory):
    """A tiny random Llama (4 KV heads: one per core of the 4-core designs) with the README's `2:4+w4`
    recipe (GPTQ 4-bit + Wanda 2:4)."""
    from llmaccel.mapping.compress import compress_checkpoint
    from llmaccel.mapping.recipe import get_recipe
    root = tmp_path_factory.mktemp("c24")
    ckpt = llama_checkpoint(root / "ckpt", heads=4, kv_heads=4)
    out = root / "compressed"
    ids = torch.randint(0, 256, (256,), generator=torch.Generator().manual_seed(0)).tolist()
    compress_checkpoint(ckpt, get_recipe("2:4+w4"), out, calibration=ids)
    return out


def _compile(capsys, model: Path, design: str, out: Path, *extra: str) -> tuple[int, dict]:
    rc = main(["compile", "--model", str(model), "--design", design, "--out", str(out), "--max-len", "128",
               "--no-storage-report", "--json", *extra])
    return rc, json.loads(capsys.readouterr().out)


def _generate(artifact: Path) -> dict:
    from llmaccel.host.session import Session
    sess = Session.load(artifact)
    out = sess.generate(PROMPT, 4)
    return {"design": sess.artifact.design, "tokens": out["token_ids"], "stats": out["stats"]}


def test_the_2to4_recipe_compiles_and_runs_on_the_bundled_2of4_design(compressed_24, tmp_path, capsys):
    # flightllm-u280 (like FlightLLM) has M=16 only: the 2:4 model is refused there, by name
    rc, err = _compile(capsys, compressed_24, "flightllm-u280", tmp_path / "refused")
    assert rc == 2 and "2:4" in err["error"]
    rc, out = _compile(capsys, compressed_24, "flightllm-u280-2of4", tmp_path / "a")
    assert rc == 0 and out["programs"] > 0
    got = _generate(tmp_path / "a")
    assert got["design"].name == "flightllm-u280-2of4" and len(got["tokens"]) == 4
    assert got["stats"]["decode_tokens_per_s"] > 0


def _custom_yaml(tmp_path: Path, name: str = "my-u280", chains: int = 40) -> Path:
    d = yaml.safe_load((BUNDLED_DESIGNS / "flightllm-u280-2of4.yaml").read_text())
    d["name"] = name
    d["matrix_engine"]["chains_per_core"] = chains
    for b in d["buffers"]:           # one bank per chain, as the preset
        if b["banks"] == 56:
            b["banks"] = chains
            b["size_bytes"] = b["size_bytes"] // 56 * chains
    d["weight_decoder"]["decoders_per_channel"] = 10
    p = tmp_path / "designs" / f"{name}.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(d))
    return p


def test_an_artifact_of_a_design_yaml_runs_without_the_yaml(compressed_24, tmp_path, capsys):
    p = _custom_yaml(tmp_path)
    want = load_design(p)
    rc, _ = _compile(capsys, compressed_24, str(p), tmp_path / "a")
    assert rc == 0
    man = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert man["design"] == "my-u280" and man["design_sha256"] == design_sha256(want)
    from llmaccel.host.artifact import load_artifact
    assert load_artifact(tmp_path / "a", design=str(p)).design == want    # the same design, named by its file
    other = _custom_yaml(tmp_path / "o", "my-u280", chains=48)
    with pytest.raises(ArtifactError, match="was compiled for design 'my-u280'"):
        load_artifact(tmp_path / "a", design=str(other))                   # same name, other figures
    p.unlink()                                  # the YAML is gone: the artifact alone must do
    got = _generate(tmp_path / "a")
    assert got["design"] == want and got["design"].chains_per_core == 40
    rc = main(["run", "--artifact", str(tmp_path / "a"), "--prompt", "x", "--json"])
    # (the tiny checkpoint has no tokenizer: the run gets as far as the prompt, past loading the design)
    assert rc == 2 and "tokenizer" in json.loads(capsys.readouterr().out)["error"]


def test_a_stored_design_that_does_not_match_its_hash_is_refused(compressed_24, tmp_path, capsys):
    rc, _ = _compile(capsys, compressed_24, "flightllm-u280-2of4", tmp_path / "a")
    assert rc == 0
    mpath = tmp_path / "a" / "manifest.json"
    man = json.loads(mpath.read_text())
    man["design_spec"]["clock_MHz"] = 200.0     # edited, and the content hash re-made to hide it
    man["content_hash"] = manifest_hash(man)
    mpath.write_text(json.dumps(man))
    from llmaccel.host.artifact import load_artifact
    with pytest.raises(ArtifactError, match="design_sha256"):
        load_artifact(tmp_path / "a")


def test_compile_finds_a_design_on_the_preset_path(compressed_24, tmp_path, capsys, monkeypatch):
    p = _custom_yaml(tmp_path, "path-u280")
    rc, err = _compile(capsys, compressed_24, "path-u280", tmp_path / "a")
    assert rc == 2 and "unknown design preset 'path-u280'" in err["error"]
    rc, _ = _compile(capsys, compressed_24, "path-u280", tmp_path / "a", "--preset-path", str(p.parent))
    assert rc == 0
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["design"] == "path-u280"


def test_manifest_design_fields_are_checked():
    from llmaccel.mapping.artifact_io import design_from_manifest, design_record
    d = load_design("flightllm-u280-2of4")
    rec = design_record(d)
    assert design_from_manifest(rec, "x") == d
    assert design_from_manifest({"design": "flightllm-u280"}, "x") == load_design("flightllm-u280")  # older artifacts
    with pytest.raises(ArtifactError, match="names no design"):
        design_from_manifest({}, "x")
    with pytest.raises(ArtifactError, match="'design_spec' must be an object"):
        design_from_manifest({**rec, "design_spec": [1]}, "x")
    with pytest.raises(ArtifactError, match="unknown field 'design_spec.bogus'|unknown field 'bogus'"):
        design_from_manifest({**rec, "design_spec": {**rec["design_spec"], "bogus": 1}}, "x")
    with pytest.raises(ArtifactError, match="field 'design' is 'other'"):
        design_from_manifest({**rec, "design": "other"}, "x")
