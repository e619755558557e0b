"""The ISA top's decoder, generated from simulator/isa.py, against ``simulator.isa.decode``.

Random valid instructions of every kind (every field drawn over its allowed
codes) are encoded by Python, decoded by the C++ extractors the top uses, and
every field's code must come back; words with a reserved bit set, an unknown
opcode or a truncated tail are rejected where ``isa.decode`` rejects them.
"""
from __future__ import annotations

import dataclasses
import subprocess

import numpy as np
import pytest

from llmaccel.hls_kernels.flow.isa_top import build_decoder_check
from llmaccel.hls_kernels.flow.isa_top_header import header_text
from llmaccel.simulator import isa

pytestmark = pytest.mark.gxx


def _draw(rng: np.random.Generator, f):
    if f.kind == "enum":
        return f.choices[rng.integers(len(f.choices))]
    if f.kind == "nm":
        return isa.NM_CODES[rng.integers(len(isa.NM_CODES))]
    if f.kind == "bool":
        return bool(rng.integers(2))
    if f.choices:
        return int(f.choices[rng.integers(len(f.choices))])
    if rng.integers(2):                       # small values too: cross-field rules need them (m % qgroup)
        return int(rng.integers(f.lo, min(f.hi, f.lo + 8) + 1))
    return int(rng.integers(f.lo, f.hi + 1, dtype=np.int64))


def _random_instr(rng: np.random.Generator, cls):
    """A random valid instruction: from the defaults, each field in turn takes a random value its
    cross-field rules allow (a value that makes the instruction invalid is drawn again, then left)."""
    ins = cls()
    own = isa.UNIT_BIT[cls.UNIT]
    fields = list(cls.LAYOUT)
    for _ in range(3):
        for j in rng.permutation(len(fields)):
            f = fields[j]
            for _ in range(20):
                try:
                    ins = dataclasses.replace(ins, **{f.name: _draw(rng, f)})
                    break
                except isa.IsaError:
                    continue
    return dataclasses.replace(ins, wait=int(rng.integers(32)) & ~own, release=int(rng.integers(32)) & ~own)


def _expected(ins) -> str:
    codes = [ins.OPCODE, ins.wait, ins.release] + [f.to_code(getattr(ins, f.name), "test") for f in ins.LAYOUT]
    return " ".join(map(str, codes))


def _run(exe, words: np.ndarray, tmp_path) -> list[str]:
    path = tmp_path / "words.u32"
    path.write_bytes(np.asarray(words, "<u4").tobytes())
    return subprocess.run([str(exe), str(path)], capture_output=True, text=True, check=True).stdout.splitlines()


def test_generated_fields_equal_isa_decode(tmp_path):
    exe = build_decoder_check()
    rng = np.random.default_rng(14)
    instrs = [_random_instr(rng, cls) for _ in range(60) for cls in isa.INSTRUCTIONS]
    words = isa.encode(instrs)
    assert [str(i) for i in isa.decode(words)] == [str(i) for i in instrs]     # the Python round trip
    lines = _run(exe, words, tmp_path)
    assert lines == [_expected(i) for i in instrs]


def test_generated_decoder_rejects_what_isa_decode_rejects(tmp_path):
    exe = build_decoder_check()
    rng = np.random.default_rng(15)
    checked = 0
    for cls in isa.INSTRUCTIONS:
        ins = _random_instr(rng, cls)
        words = isa.encode([ins])
        for j, used in enumerate(isa.USED_BITS[cls]):
            free = ~used & 0xFFFFFFFF
            if not free:
                continue
            bad = words.copy()
            bad[j] |= np.uint32(1 << int(np.flatnonzero([(free >> b) & 1 for b in range(32)])[0]))
            with pytest.raises(isa.IsaError, match="reserved"):
                isa.decode(bad)
            assert _run(exe, bad, tmp_path) == ["error 0 reserved"]
            checked += 1
        if cls.WORDS > 1:
            with pytest.raises(isa.IsaError, match="truncated"):
                isa.decode(words[:-1])
            assert _run(exe, words[:-1], tmp_path) == ["error 0 truncated"]
    assert checked >= len(isa.INSTRUCTIONS)
    unknown = [op for op in range(16) if op not in isa.BY_OPCODE][0]
    with pytest.raises(isa.IsaError, match="opcode"):
        isa.decode(np.array([unknown], np.uint32))
    assert _run(exe, np.array([unknown], np.uint32), tmp_path) == ["error 0 opcode"]


def test_header_is_generated_from_the_layout_tables():
    # one fact in one place: every field of every instruction has its extractor at its own position
    text = header_text()
    for cls in isa.INSTRUCTIONS:
        for f in cls.LAYOUT:
            line = f"inline uint32_t {cls.MNEMONIC}_{f.name}(const uint32_t* w) {{ return (w[{f.word}] >> {f.lsb}) & "
            assert line in text, (cls.MNEMONIC, f.name)
        assert f"static const int OP_{cls.MNEMONIC} = {cls.OPCODE};" in text
