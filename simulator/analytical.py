"""Instant estimates: the analytical model of the Allo LLM study, applied to a FlightLLM-style design.

Source: H. Chen, J. Zhang, Y. Du, S. Xiang, Z. Yue, N. Zhang, Y. Cai, Z. Zhang,
"Understanding the Potential of FPGA-Based Spatial Acceleration for Large
Language Model Inference", ACM TRETS 2024 (arXiv 2312.15159), section 4.

Per decoder layer with prompt length ``l``, hidden ``d``, FFN width ``d_ffn``:

    prefill MACs:  q/k/v  3 l d^2 (with GQA: l d (d + 2 d_kv))   QK^T  l^2 d   SV  l^2 d
                   o      l d^2                                   FFN   3 l d d_ffn (SwiGLU: gate, up, down)
    decode MACs (one token, context l):
                   q/k/v  3 d^2 (GQA: d (d + 2 d_kv))   QK^T (l+1) d   SV (l+1) d   o d^2   FFN 3 d d_ffn

The linear terms are the family's projections (``spec.linear_shapes()``, from its
simulator.families Architecture): a non-gated MLP (GPT-2, OPT) has 2 l d d_ffn, not 3.
Biases (Qwen2's q/k/v, GPT-2/OPT everywhere) are one FP32 add per output in the
linear's epilogue, not MACs, and LayerNorm's extra pass is SFU work; neither enters
these bounds (the cycle engine times the SFU).

N:M sparsity scales the linear MACs by N/M (only kept weights are multiplied).
Bounds (each a lower bound on time; the estimate is their maximum):

* compute:  T_c = MACs / (f * M), M = INT8 MACs per cycle of the whole design
  (prefill: both packed lanes; decode: one lane, as in the RTL);
  with all layers alike and d_ffn = 4d this is the study's
  T_prefill = N (1 + 1/C) l d^2 / (f M) form, the 1/C term being attention's
  share; we sum the terms explicitly instead of using the closed form.
* bandwidth:  T_b = bytes / BW_HBM (weights with scales/indices once per
  token in decode and once per prefill chunk, KV cache reads and writes).
* port:  T_p = the busier of the weight-buffer read ports (decoded INT8 bytes /
  (port bytes per cycle * f)) and the weight decoders' input ports (each decoder
  takes one 32-bit code word and one index word per cycle and emits one beat:
  rows x max(beats, code words, index words) per row, the steady state of
  ``sparse_dsp.weight_decoder.decoder_row_period``, over all decoders).
* memory capacity: weights + KV cache must fit HBM, and one token's
  activations the on-chip buffers; a violated capacity is an error, not a time.

The cycle-approximate engine adds what these bounds ignore: HBM burst
efficiency and latency, chain fill/drain per tile, tile padding, SFU phases
that do not overlap the matrix engine, cross-core barriers, bucket padding
(lengths rounded up to 16/128). docs/simulator.md states the agreement band.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmaccel.errors import LlmaccelError


@dataclass(frozen=True)
class PhaseEstimate:
    macs: float
    bytes: float
    t_compute_s: float
    t_bandwidth_s: float
    t_port_s: float

    @property
    def seconds(self) -> float:
        return max(self.t_compute_s, self.t_bandwidth_s, self.t_port_s)

    @property
    def bound(self) -> str:
        t = {"compute": self.t_compute_s, "bandwidth": self.t_bandwidth_s, "port": self.t_port_s}
        return max(t, key=t.get)


def linear_macs_per_token(spec: Any) -> int:
    """MACs of one token through one layer's projections (the family's own list)."""
    return sum(o * k for _, o, k in spec.linear_shapes())


def layer_macs_prefill(spec: Any, l: int, nm_frac: float = 1.0, causal: bool = False) -> float:
    attn = l * l * spec.q_dim * (0.5 if causal else 1.0)
    return nm_frac * l * linear_macs_per_token(spec) + 2 * attn


def layer_macs_decode(spec: Any, l: int, nm_frac: float = 1.0) -> float:
    return nm_frac * linear_macs_per_token(spec) + 2 * (l + 1) * spec.q_dim


def _row_period(fm: Any, chain_len: int) -> int:
    """Decoder cycles per row in steady state: one beat, one code word, one index word per cycle."""
    return max(-(-fm.kept_per_row // chain_len), fm.code_words_per_row, fm.index_words_per_row)


def _linear_stats(formats: Any, chain_len: int = 16) -> tuple[float, float, float, float]:
    """(kept fraction of decoder-linear weights, packed bytes of all weights, decoded INT8 bytes,
    decoder row-cycles of all weights)."""
    dense = kept = dec_cycles = 0
    for lay in formats.layers:
        for _, fm in lay:
            dense += fm.out_features * fm.in_features
            kept += fm.out_features * fm.kept_per_row
            dec_cycles += fm.out_features * _row_period(fm, chain_len)
    head = formats.lm_head
    decoded = kept + head.out_features * head.kept_per_row
    dec_cycles += head.out_features * _row_period(head, chain_len)
    return kept / dense, float(formats.weight_bytes), float(decoded), float(dec_cycles)


def _kv_elem_bytes(formats: Any) -> int:
    """1 for the INT8 KV cache (its scales are counted per row where rows are), 2 for FP16 (numerics.md section 7)."""
    return 2 if getattr(formats, "kv_dtype", "int8") == "fp16" else 1


def check_capacity(spec: Any, hw: Any, formats: Any, max_len: int) -> None:
    kv = 2 * spec.num_layers * spec.kv_dim * max_len * _kv_elem_bytes(formats)
    need = formats.weight_bytes + kv
    if need > hw.hbm_capacity_bytes:
        raise LlmaccelError(f"memory-capacity bound: weights + KV cache need {need / 2**30:.2f} GiB, "
                            f"HBM holds {hw.hbm_capacity_bytes / 2**30:.2f} GiB")


def estimate(spec: Any, hw: Any, formats: Any, prefill: int, decode: int, prefill_chunk: int | None = None) -> dict:
    """Analytical prefill time, decode time per token and tokens/s (no events, microseconds to run)."""
    frac, w_bytes, dec_bytes, dec_cycles = _linear_stats(formats, hw.chain_len)
    f = hw.clock_hz
    n_dec = hw.n_cores * hw.decoders_per_core
    t_decoder = dec_cycles / (n_dec * f) if n_dec else 0.0   # all weights through the decoders once (FP16: none)
    dec_bytes *= getattr(hw, "weight_bytes_per_element", 1)   # FP16 operands are 2 bytes in the weight buffer
    m_mm = hw.n_cores * hw.macs_per_cycle_per_core          # both lanes (INT8), one (FP16)
    m_mv = hw.n_cores * hw.chains_per_core * hw.chain_len     # one lane (decode)
    bw = hw.hbm_peak_Bps
    port = hw.n_cores * hw.buf_read_bytes_per_cycle_per_core * f
    n = spec.num_layers
    head_macs = formats.lm_head.out_features * formats.lm_head.kept_per_row
    chunk = prefill_chunk or prefill
    n_chunks = -(-prefill // chunk)
    kv_row = 2 * spec.head_dim if _kv_elem_bytes(formats) == 2 else spec.head_dim + 4
    p_macs = n * layer_macs_prefill(spec, prefill, frac, causal=True) + head_macs
    p_bytes = n_chunks * w_bytes + 2 * n * spec.num_kv_heads * prefill * kv_row
    pre = PhaseEstimate(p_macs, p_bytes, p_macs / (f * m_mm), p_bytes / bw,
                        n_chunks * max(dec_bytes / port, t_decoder))
    t_dec = 0.0
    d_macs = d_bytes = 0.0
    for i in range(decode):
        L = prefill + i + 1
        macs = n * layer_macs_decode(spec, L - 1, frac) + head_macs
        by = w_bytes + 2 * n * spec.num_kv_heads * L * kv_row
        e = PhaseEstimate(macs, by, macs / (f * m_mv), by / bw, max(dec_bytes / port, t_decoder))
        t_dec += e.seconds
        d_macs += macs
        d_bytes += by
    dec = PhaseEstimate(d_macs, d_bytes, d_macs / (f * m_mv), d_bytes / bw,
                        decode * max(dec_bytes / port, t_decoder))
    return {
        "ttft_s": pre.seconds, "prefill_bound": pre.bound,
        "decode_ms_per_token": 1e3 * t_dec / decode if decode else 0.0,
        "decode_tokens_per_s": decode / t_dec if decode else 0.0,
        "decode_bound": dec.bound,
        "prefill": pre.__dict__ | {"seconds": pre.seconds}, "decode": dec.__dict__ | {"seconds": t_dec},
    }
