"""The manifest hash covers every file and all metadata; a tampered artifact never compiles or runs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llmaccel.cli import main
from llmaccel.mapping.artifact_io import ArtifactError, manifest_hash, read_manifest
from llmaccel.mapping.compress import SCHEMA, SCHEMA_VERSION, compress_checkpoint, load_compressed
from llmaccel.mapping.recipe import get_recipe


@pytest.fixture(scope="module")
def w8(tiny_checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("integrity") / "w8"
    compress_checkpoint(tiny_checkpoint, get_recipe("w8"), out)
    return out


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _edit(art: Path, change, reseal: bool = False) -> None:
    man = json.loads((art / "manifest.json").read_text())
    change(man)
    if reseal:                      # an editor who also recomputes the content hash
        man["content_hash"] = manifest_hash(man)
    (art / "manifest.json").write_text(json.dumps(man))


def _cli_error(capsys, argv) -> tuple[int, str]:
    rc = main(argv + ["--json"])
    out = capsys.readouterr().out.strip().splitlines()
    return rc, json.loads(out[-1]).get("error", "") if out else ""


@pytest.mark.parametrize("field, change", [
    ("rms_norm_eps", lambda m: m["config"].__setitem__("rms_norm_eps", 0.5)),
    ("num_layers", lambda m: m.__setitem__("num_layers", 1)),
    ("layer_formats", lambda m: m["layer_formats"]["lm_head"].__setitem__("in_features", 64)),
    ("recipe", lambda m: m["recipe"].__setitem__("act_bits", None)),
    ("files", lambda m: m["files"].__setitem__("head.safetensors", "0" * 64)),
])
def test_an_edited_manifest_field_is_refused(field, change, w8, tmp_path, capsys):
    bad = _copy(w8, tmp_path)
    _edit(bad, change)
    for verify in (True, False):
        with pytest.raises(ArtifactError, match="does not match its content_hash"):
            load_compressed(bad, verify=verify)
    rc, err = _cli_error(capsys, ["compile", "--model", str(bad), "--out", str(tmp_path / "c"), "--max-len", "128",
                                  "--no-storage-report"])
    assert rc == 2 and "content_hash" in err and not (tmp_path / "c").exists()


def test_timings_are_outside_the_hash(w8, tmp_path):
    man = read_manifest(w8, SCHEMA, SCHEMA_VERSION)
    assert man["timings"]["compress_seconds"] > 0 and "compress_seconds" not in man["stats"]
    ok = _copy(w8, tmp_path)
    _edit(ok, lambda m: m["timings"].__setitem__("compress_seconds", 1e9))
    assert load_compressed(ok).content_hash == man["content_hash"]


def test_an_unlisted_file_is_refused(w8, tmp_path):
    bad = _copy(w8, tmp_path)
    (bad / "extra.safetensors").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="file 'extra.safetensors' is not listed in the manifest"):
        load_compressed(bad)


def test_a_listed_file_that_is_missing_is_refused(w8, tmp_path):
    bad = _copy(w8, tmp_path)
    (bad / "embed.safetensors").unlink()
    with pytest.raises(ArtifactError, match="file 'embed.safetensors' listed in the manifest is missing"):
        load_compressed(bad, verify=False)


@pytest.mark.parametrize("key", ["../../../../etc/hostname", "/etc/hostname", "..", "sub/../head.safetensors"])
def test_path_traversal_and_absolute_file_keys_are_refused(key, w8, tmp_path):
    bad = _copy(w8, tmp_path)
    _edit(bad, lambda m: m["files"].__setitem__(key, "0" * 64), reseal=True)
    with pytest.raises(ArtifactError, match="is not a plain name inside the artifact"):
        read_manifest(bad, SCHEMA, SCHEMA_VERSION)


def test_a_symlink_leading_out_is_refused_even_with_the_right_digest(w8, tmp_path):
    bad = _copy(w8, tmp_path)
    outside = tmp_path / "outside.safetensors"
    shutil.move(bad / "head.safetensors", outside)          # same bytes, so the digest still matches
    (bad / "head.safetensors").symlink_to(outside)
    with pytest.raises(ArtifactError, match="file 'head.safetensors' is a symbolic link"):
        load_compressed(bad)
    (bad / "head.safetensors").unlink()
    shutil.copyfile(outside, bad / "head.safetensors")
    (bad / "link").symlink_to("/etc")
    with pytest.raises(ArtifactError, match="symbolic link 'link' is not listed"):
        load_compressed(bad)


@pytest.mark.parametrize("content, match", [
    (b"[1, 2, 3]", "holds a JSON list, expected an object"),
    (b'{"schema": "\xff\xfe"}', "not UTF-8"),
    (b'{"schema": "a", "schema": "b"}', "duplicate key 'schema'"),
    (b"{", "malformed JSON"),
])
def test_a_malformed_manifest_is_one_clear_error(content, match, w8, tmp_path, capsys):
    bad = _copy(w8, tmp_path)
    (bad / "manifest.json").write_bytes(content)
    with pytest.raises(ArtifactError, match=match):
        load_compressed(bad)
    rc, err = _cli_error(capsys, ["compile", "--model", str(bad), "--out", str(tmp_path / "c"), "--max-len", "128",
                                  "--no-storage-report"])
    assert rc == 2 and match.split(",")[0] in err


def test_a_compiled_artifact_of_a_tampered_model_never_runs(llama_checkpoint, tmp_path, capsys):
    from llmaccel.host.artifact import compile_artifact, load_artifact
    ckpt = llama_checkpoint(tmp_path / "ckpt", kv_heads=4)        # 4 KV heads: one per core of the U280 design
    cm = tmp_path / "cm"
    compress_checkpoint(ckpt, get_recipe("w8"), cm)
    art = compile_artifact(cm, tmp_path / "art", "flightllm-u280", 128)
    assert load_artifact(art).max_len == 128            # untouched, it loads
    _edit(cm, lambda m: m["config"].__setitem__("rms_norm_eps", 0.5))
    rc, err = _cli_error(capsys, ["run", "--artifact", str(art), "--prompt", "hi", "--max-new-tokens", "1"])
    assert rc == 2 and "content_hash" in err
    _edit(art, lambda m: m.__setitem__("max_len", 256))
    rc, err = _cli_error(capsys, ["run", "--artifact", str(art), "--compressed", str(cm), "--prompt", "hi",
                                  "--max-new-tokens", "1"])
    assert rc == 2 and "content_hash" in err


def test_an_oversized_manifest_is_refused_before_it_is_read(w8, tmp_path):
    from llmaccel.mapping.artifact_io import MAX_MANIFEST_BYTES
    bad = _copy(w8, tmp_path)
    with open(bad / "manifest.json", "r+b") as f:
        f.truncate(MAX_MANIFEST_BYTES + 1)            # sparse: no disk space used
    with pytest.raises(ArtifactError, match="more than 67108864"):
        load_compressed(bad)
