"""Compiled artifacts: loaded only for their own design, their own compressed model and intact files."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mapping.compress import load_compressed

from host.artifact import compile_artifact, load_artifact
from host.session import Session
from mapping.artifact_io import ArtifactError
from mapping.compress import compress_checkpoint
from mapping.recipe import get_recipe


def test_artifact_for_another_design_is_refused(host_w8):
    with pytest.raises(ArtifactError, match="compiled for design 'flightllm-u280'.*flightllm-u55c"):
        load_artifact(host_w8[1], design="flightllm-u55c")


def test_artifact_with_another_compressed_model_is_refused(host_w8, host_ckpt, tmp_path):
    other = tmp_path / "w4"
    compress_checkpoint(host_ckpt[0], get_recipe("w4-g128-rtn"), other)
    with pytest.raises(ArtifactError, match="content_hash"):
        Session.load(host_w8[1], compressed=other)


def test_corrupted_program_words_are_refused(host_w8, tmp_path):
    bad = tmp_path / "art"
    shutil.copytree(host_w8[1], bad)
    words = np.frombuffer((bad / "programs.bin").read_bytes(), "<u4").copy()
    words[5] ^= 1
    (bad / "programs.bin").write_bytes(words.tobytes())
    with pytest.raises(ArtifactError, match="programs.bin"):
        load_artifact(bad)


def test_stale_program_is_refused_before_it_runs(host_w8, tmp_path):
    """An artifact whose stored instructions differ from what the compiler emits now: one clear error."""
    bad = tmp_path / "art"
    shutil.copytree(host_w8[1], bad)
    table = json.loads((bad / "programs.json").read_text())
    head = table["programs"][table["head"]]["cores"]["0"]
    words = np.frombuffer((bad / "programs.bin").read_bytes(), "<u4").copy()
    words[head["word_offset"] + 1] ^= 1 << 3             # flip an operand bit of the head program
    (bad / "programs.bin").write_bytes(words.tobytes())
    man = json.loads((bad / "manifest.json").read_text())
    from mapping.artifact_io import file_sha256, manifest_hash
    man["files"]["programs.bin"] = file_sha256(bad / "programs.bin")   # hash made consistent on purpose
    man["content_hash"] = manifest_hash(man)
    (bad / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ArtifactError, match="differs from the compiled instructions"):
        load_artifact(bad)


def test_artifact_names_its_model_and_round_trips(host_w8):
    art = load_artifact(host_w8[1])
    assert art.manifest["compressed_model"]["content_hash"] == art.compressed.content_hash
    assert art.max_len == 128 and art.design_name == "flightllm-u280"
    assert ("decode", 16, 1) in art.programs and ("head", 0, 1) in art.programs


def test_an_artifact_from_llmaccel_compile_runs_with_its_compressed_model(host_w8, tmp_path, capsys):
    from llmaccel.cli import main
    out = tmp_path / "cc"
    assert main(["compile", "--model", str(host_w8[0]), "--max-len", "128", "--out", str(out),
                 "--no-storage-report", "--json"]) == 0
    capsys.readouterr()
    # llmaccel compile records which compressed model it compiled, so the artifact loads on its own
    assert load_artifact(out).manifest["compressed_model"]["content_hash"] == load_compressed(host_w8[0]).content_hash
    a = Session.load(out, compressed=host_w8[0])
    b = Session.load(host_w8[1])
    assert list(a.stream([5, 17, 300], 4)) == list(b.stream([5, 17, 300], 4))
