"""Instruction storage: bucketed programs vs one program per length (what length-adaptive compilation saves)."""
from __future__ import annotations

from typing import Any

from llmaccel.mapping.compiler.emit import CoreSink, counting_sink


def _words(emit_fn) -> int:
    sink, total = counting_sink()
    emit_fn(sink)
    return total[0]


def _layer_words(comp: Any, q0: int, tokens: int, memo: dict) -> int:
    """Words of one layer program (all cores) for tokens [q0, q0 + tokens).

    Only attention (KV tiles) and the K/V stores depend on the position; the rest depends on
    ``tokens`` only. Both parts come from the same emitters as the programs.
    """
    ctx = q0 + tokens
    em = comp.emitter
    cores = range(comp.hw.n_cores)

    def var(sk) -> None:
        for c in cores:
            emit = CoreSink(sk, c)
            em._attention(emit, c, 0, q0, ctx, tokens)
            em._store_kv(emit, c, 0, q0, tokens, 0)
    if ("fixed", tokens) not in memo:
        full = _words(lambda sk: comp.layer_program("decode" if tokens == 1 else "prefill", ctx, tokens, sink=sk,
                                                    layer=0))
        memo[("fixed", tokens)] = full - _words(var)
    key = ("var", q0, tokens)
    if key not in memo:
        memo[key] = _words(var)
    return memo[("fixed", tokens)] + memo[key]


def storage_report(comp: Any) -> dict[str, Any]:
    """Instruction bytes of bucketed programs vs one program per length (decode and prefill).

    Programs are per layer (addresses differ per layer), so both totals count ``num_layers`` layer
    streams plus the LM head per program. A prefill program for length L is its chunk programs; a
    decode program for context L covers the token at position L - 1.
    """
    nl = comp.spec.num_layers
    head = _words(lambda sk: comp.head_program(sink=sk))
    memo: dict = {}

    def decode_words(ctx: int) -> int:
        return nl * _layer_words(comp, ctx - 1, 1, memo) + head

    def prefill_words(length: int, bucket: int) -> int:
        chunk = comp.prefill_chunk(bucket)
        return nl * sum(_layer_words(comp, q0, min(chunk, length - q0), memo) for q0 in range(0, length, chunk)) + head

    per_len = sum(decode_words(L) + prefill_words(L, L) for L in range(1, comp.max_len + 1))
    dec_b = list(range(comp.decode_bucket, comp.max_len + 1, comp.decode_bucket))
    pre_b = list(range(comp.prefill_bucket, comp.max_len + 1, comp.prefill_bucket))
    bucketed = sum(decode_words(b) for b in dec_b) + sum(prefill_words(b, b) for b in pre_b)
    return {"decode_buckets": len(dec_b), "prefill_buckets": len(pre_b), "programs_bucketed": len(dec_b) + len(pre_b),
            "programs_per_length": 2 * comp.max_len,
            "instruction_bytes_bucketed": 4 * bucketed, "instruction_bytes_per_length": 4 * per_len,
            "instruction_storage_saving": 1.0 - bucketed / per_len}
