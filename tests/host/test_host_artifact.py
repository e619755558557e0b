"""Compiled artifacts: loaded only for their own design, their own compressed model and intact files."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from llmaccel.mapping.compress import load_compressed

from llmaccel.host.artifact import compile_artifact, load_artifact
from llmaccel.host.session import Session
from llmaccel.mapping.artifact_io import ArtifactError
from llmaccel.mapping.compress import compress_checkpoint
from llmaccel.mapping.recipe import get_recipe


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


def _rewrite_words(src, dst, edit):
    """Copy an artifact and edit its stored words (``edit(words, table)``), hashes made consistent on purpose:
    what a board would be handed if the binary were changed after compilation."""
    shutil.copytree(src, dst)
    table = json.loads((dst / "programs.json").read_text())
    words = np.frombuffer((dst / "programs.bin").read_bytes(), "<u4").copy()
    edit(words, table)
    (dst / "programs.bin").write_bytes(words.tobytes())
    man = json.loads((dst / "manifest.json").read_text())
    from llmaccel.mapping.artifact_io import file_sha256, manifest_hash
    man["files"]["programs.bin"] = file_sha256(dst / "programs.bin")
    man["content_hash"] = manifest_hash(man)
    (dst / "manifest.json").write_text(json.dumps(man))
    return dst


def test_a_stored_word_that_does_not_decode_is_refused_at_load(host_w8, tmp_path):
    def edit(words, table):
        head = table["programs"][table["head"]]["cores"]["0"]
        words[head["word_offset"] + 2] |= np.uint32(1 << 31)    # a reserved bit of the head's first LD (word 2)
    bad = _rewrite_words(host_w8[1], tmp_path / "art", edit)
    with pytest.raises(ArtifactError, match="does not decode.*reserved bits"):
        load_artifact(bad)


def test_the_stored_words_are_what_runs(host_w8, tmp_path):
    """No regeneration: the final norm's LDs pointed at layer 0's input-norm block (valid words) give other logits."""
    import dataclasses
    from llmaccel.simulator import isa
    regions = {r["tensor"]: r for r in json.loads((host_w8[1] / "placement.json").read_text())["regions"]}

    def edit(words, table):
        for c, v in table["programs"][table["head"]]["cores"].items():
            w = words[v["word_offset"]:v["word_offset"] + v["n_words"]]
            other = regions[f"L0.norm_in.c{c}"]["addr"] // isa.LINE_BYTES
            instrs = [dataclasses.replace(ins, src_addr_lines=other)
                      if isinstance(ins, isa.LD) and ins.kind == "norm_weights" else ins for ins in isa.decode(w)]
            words[v["word_offset"]:v["word_offset"] + v["n_words"]] = isa.encode(instrs)
    changed = _rewrite_words(host_w8[1], tmp_path / "art", edit)
    la = Session.load(host_w8[1]).backend.prefill([5, 17, 300]).logits
    lb = Session.load(changed).backend.prefill([5, 17, 300]).logits
    assert np.isfinite(lb).all() and not np.allclose(la, lb)


def test_artifact_names_its_model_and_round_trips(host_w8):
    art = load_artifact(host_w8[1])
    assert art.manifest["compressed_model"]["content_hash"] == art.compressed.content_hash
    assert art.max_len == 128 and art.design_name == "flightllm-u280"
    assert ("decode", 16, 1, 0) in art.programs and ("head", 0, 1, -1) in art.programs


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
