"""Lowering: emitted instructions -> ISA words per core (+ debug names), and the CompiledModel around them."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from llmaccel.simulator import isa
from llmaccel.simulator.compiled import CompiledModel, CompiledProgram, CoreStream, ProgramKey


def build_program(emit: Callable[[Callable], None], phase: str, ctx_len: int, tokens: int, group: int,
                  layer: int, replicas: int) -> CompiledProgram:
    """Run an emitter into per-core instruction lists and encode them (a field that does not fit is an IsaError)."""
    per_core: dict[int, tuple[list, list]] = {}

    def sink(core: int, ins: isa.Instr, name: str) -> None:
        ins_l, names = per_core.setdefault(core, ([], []))
        ins_l.append(ins)
        names.append(name)
    emit(sink)
    streams = tuple(CoreStream(c, isa.encode(ins_l), tuple(names)) for c, (ins_l, names) in sorted(per_core.items()))
    return CompiledProgram(phase, ctx_len, tokens, group, layer, streams, replicas)


def compiled_model(comp: Any, programs: dict[ProgramKey, CompiledProgram]) -> CompiledModel:
    """The model as the engines see it: programs plus what the host knows (placement, layout, bases)."""
    f, s = comp.f, comp.spec
    linear_macs = (sum(fm.out_features * fm.kept_per_row for lay in f.layers for _, fm in lay)
                   + f.lm_head.out_features * f.lm_head.kept_per_row)
    chunks = tuple((b, comp.prefill_chunk(b)) for b in range(comp.prefill_bucket, comp.max_len + 1, comp.prefill_bucket))
    return CompiledModel(spec=s, hw=comp.hw, max_len=comp.max_len, decode_bucket=comp.decode_bucket,
                         prefill_bucket=comp.prefill_bucket, kv_tile=comp.kv_tile, prefill_chunks=chunks,
                         layer_groups=tuple(tuple(g) for g in comp.groups), slices=comp.sl, buffers=comp.buffers,
                         act=comp.act, regions=tuple(comp.placement.regions), layer_base_lines=comp.layer_base,
                         programs=dict(programs), weight_bytes=f.weight_bytes, linear_macs=linear_macs,
                         source=f.source)


def program_instructions(prog: CompiledProgram) -> list[tuple[int, isa.Instr, str]]:
    """(core, instruction, name) of every instruction of a program, decoded from its words."""
    out = []
    for st in prog.cores:
        for ins, name in zip(isa.decode(st.words), st.names):
            out.append((st.core, ins, name))
    return out


__all__ = ["build_program", "compiled_model", "program_instructions", "np"]
