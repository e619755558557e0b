"""`llmaccel compile` / `llmaccel simulate` end to end on the tiny shapes (real CLI, real files)."""
import json
from pathlib import Path

import pytest

from llmaccel.cli import main
from llmaccel.mapping.artifact_io import ArtifactError, read_manifest
from llmaccel.mapping.compiled_artifact import SCHEMA_VERSION
from llmaccel.simulator.isa import decode

TINY = str(Path(__file__).resolve().parents[1] / "simulator" / "data" / "tiny-u280.yaml")


def _run(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr().out
    return rc, json.loads(out.strip().splitlines()[-1])


def test_simulate_json_has_the_promised_fields(capsys, tmp_path):
    trace, plot = tmp_path / "t.json", tmp_path / "p.png"
    rc, o = _run(capsys, ["simulate", "--model", "tiny", "--design", TINY, "--recipe", "w4-g128-rtn",
                          "--prefill", "64", "--decode", "32", "--max-len", "256", "--json",
                          "--trace", str(trace), "--plot", str(plot)])
    assert rc == 0
    for k in ("ttft_s", "decode_ms_per_token", "decode_tokens_per_s", "power_W", "tokens_per_J",
              "hbm_bw_utilization", "roofline_decode_tokens_per_s"):
        assert isinstance(o[k], float) and o[k] > 0, k
    assert o["decode_tokens_per_s"] == pytest.approx(1e3 / o["decode_ms_per_token"])
    ev = json.loads(trace.read_text())["traceEvents"]
    spans = [e for e in ev if e["ph"] == "X"]
    assert spans and {e["tid"] for e in spans} >= {0, 2, 3}       # LD, MPE, SFU threads
    assert all(e["dur"] >= 0 for e in spans)
    assert plot.stat().st_size > 1000


def test_simulate_bad_input_is_one_json_error(capsys):
    rc, o = _run(capsys, ["simulate", "--model", "tiny", "--design", TINY, "--prefill", "300", "--decode", "1",
                          "--max-len", "256", "--recipe", "w4-g128-rtn", "--json"])
    assert rc == 2 and "beyond the compiled maximum" in o["error"]
    rc, o = _run(capsys, ["simulate", "--design", "nope", "--json"])
    assert rc == 2 and "unknown design preset" in o["error"]


def test_compile_writes_a_verified_artifact(capsys, tmp_path):
    out = tmp_path / "art"
    rc, o = _run(capsys, ["compile", "--model", "tiny", "--design", TINY, "--recipe", "w4-g128-rtn",
                          "--max-len", "256", "--out", str(out), "--json"])
    assert rc == 0
    man = read_manifest(out, "llmaccel.compiled_program", SCHEMA_VERSION)
    assert man["max_len"] == 256 and man["storage"]["instruction_storage_saving"] > 0.5
    idx = json.loads((out / "programs.json").read_text())
    assert len(idx["decode_buckets"]) == 16 and len(idx["prefill_buckets"]) == 2
    words = __import__("numpy").frombuffer((out / "programs.bin").read_bytes(), "<u4")
    entry = idx["programs"][idx["decode_buckets"]["32"]]["cores"]["0"]
    instrs = decode(words[entry["word_offset"]: entry["word_offset"] + entry["n_words"]])
    assert len(instrs) == entry["n_instructions"]
    assert {i.MNEMONIC for i in instrs} >= {"LD", "ST", "MV", "MISC", "SYS"}
    placement = json.loads((out / "placement.json").read_text())
    assert placement["n_channels"] == 8 and placement["regions"]
    # a corrupted artifact is refused
    (out / "programs.bin").write_bytes(b"\0" * 16)
    with pytest.raises(ArtifactError, match="content hash"):
        read_manifest(out, "llmaccel.compiled_program", SCHEMA_VERSION)


def test_compile_verify_proves_every_program_race_free_and_refuses_a_racy_one(capsys, tmp_path, monkeypatch):
    """--verify runs the hazard checker on every compiled program before anything is written; a program with
    a dropped slot token (injected into the compiler's output) is refused with the hazard named, and no
    artifact appears."""
    import dataclasses

    from llmaccel.mapping.compiler import Compiler
    from llmaccel.simulator import isa
    argv = ["compile", "--model", "tiny", "--design", TINY, "--recipe", "w4-g128-rtn", "--max-len", "256",
            "--no-storage-report", "--verify", "--json"]
    rc, o = _run(capsys, argv + ["--out", str(tmp_path / "ok")])
    assert rc == 0 and o["verified_race_free_programs"] == o["programs"] > 10

    real = Compiler.compile_model

    def racy(self, *a, **k):                    # the v_proj tile LD without its slot token
        cm = real(self, *a, **k)
        key = next(k for k, p in cm.programs.items() if p.phase == "decode")
        prog = cm.programs[key]
        st = prog.stream(0)
        ins = isa.decode(st.words)
        i = list(st.names).index("ld_v_proj[0].ch0")
        ins[i] = dataclasses.replace(ins[i], wait=0)
        cores = (dataclasses.replace(st, words=isa.encode(ins)),) + prog.cores[1:]
        return dataclasses.replace(cm, programs={**cm.programs, key: dataclasses.replace(prog, cores=cores)})
    monkeypatch.setattr(Compiler, "compile_model", racy)
    rc, o = _run(capsys, argv + ["--out", str(tmp_path / "bad")])
    assert rc == 2 and "write-after-read" in o["error"] and "ld_v_proj[0].ch0" in o["error"]
    assert not (tmp_path / "bad").exists()
