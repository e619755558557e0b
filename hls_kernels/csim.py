"""Call C-simulated kernels on numpy arrays (ctypes over the libraries build.py makes).

Each wrapper checks its inputs against the configuration it was built for and
raises one LlmaccelError naming the field, so a bad shape never reaches the
C++ asserts (which would abort the process).
"""
from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Optional

import numpy as np

from llmaccel.hls_kernels.build import build
from llmaccel.hls_kernels.configs import (AttentionKernelConfig, DecoderLayerConfig, HlsConfigError, LinearKernelConfig,
                                 SfuKernelConfig, PROJECTIONS)
from llmaccel.sparse_dsp.packed_format import PackedLinear

F32 = np.float32


def _ptr(a: Optional[np.ndarray]):
    return None if a is None else ctypes.c_void_p(a.ctypes.data)


def _c(a: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype)


@lru_cache(maxsize=None)
def _load(config) -> ctypes.CDLL:
    return ctypes.CDLL(str(build(config)))


class LinearKernel:
    """Weight decoder, MV and MM linear kernels of one LinearKernelConfig."""

    def __init__(self, config: LinearKernelConfig):
        self.config = config
        self.lib = _load(config)

    def _check(self, layer: PackedLinear) -> None:
        f, c = layer.fmt, self.config
        want = (c.bits, tuple(c.nm) if c.nm else None, c.group_size, c.symmetric)
        got = (f.bits, f.nm, f.group_size, f.symmetric)
        if want != got:
            raise HlsConfigError(f"layer format (bits, nm, group_size, symmetric)={got} does not match kernel "
                                 f"{c.name} built for {want}")
        if f.in_features > c.k_max or f.out_features > c.o_max:
            raise HlsConfigError(f"layer {f.out_features}x{f.in_features} exceeds kernel {c.name} bounds "
                                 f"o_max={c.o_max}, k_max={c.k_max}")

    def _arrays(self, layer: PackedLinear):
        codes = _c(layer.codes, np.uint32)
        idx = _c(layer.indices, np.uint32) if layer.indices.size else np.zeros(1, np.uint32)
        scales = _c(layer.scales.view(np.uint16), np.uint16)
        zeros = None if layer.zeros is None else _c(layer.zeros, np.uint8)
        return codes, idx, scales, zeros

    def decode(self, layer: PackedLinear) -> tuple[np.ndarray, np.ndarray]:
        """(int8 d [O, kept], int32 dense column [O, kept]) from the HLS weight decoder."""
        if self.config.kind != "decode":
            raise HlsConfigError(f"kernel {self.config.name} is not a weight decoder (kind='decode')")
        self._check(layer)
        f = layer.fmt
        codes, idx, _, zeros = self._arrays(layer)
        d = np.zeros((f.out_features, f.kept_per_row), np.int8)
        col = np.zeros((f.out_features, f.kept_per_row), np.int32)
        self.lib.llmaccel_weight_decode(_ptr(codes), _ptr(idx), _ptr(zeros), f.out_features, f.in_features,
                                        _ptr(d), _ptr(col))
        return d, col

    def decode_stream(self, layer: PackedLinear) -> tuple[np.ndarray, np.ndarray]:
        """Same as :meth:`decode`, through the AXI-stream decoder (words streamed row by row)."""
        if self.config.kind != "decode_stream":
            raise HlsConfigError(f"kernel {self.config.name} is not a streaming decoder (kind='decode_stream')")
        self._check(layer)
        f = layer.fmt
        codes, idx, _, zeros = self._arrays(layer)
        n = f.out_features * f.kept_per_row
        d = np.zeros((f.out_features, f.kept_per_row), np.int8)
        col = np.zeros((f.out_features, f.kept_per_row), np.int32)
        rc = self.lib.llmaccel_weight_decode_stream(_ptr(codes), layer.codes.size, _ptr(idx), layer.indices.size,
                                                    _ptr(zeros), f.out_features, f.in_features, _ptr(d), _ptr(col), n)
        if rc != 0:
            raise HlsConfigError(f"streaming decoder of {self.config.name} left words unconsumed (rc={rc})")
        return d, col

    def mv(self, layer: PackedLinear, xq: np.ndarray, s_x: float) -> tuple[np.ndarray, np.ndarray]:
        """(FP32 y [O], INT32 group partial sums [O, K/G]) for one INT8 token."""
        if self.config.kind != "mv":
            raise HlsConfigError(f"kernel {self.config.name} is not an MV kernel (kind='mv')")
        self._check(layer)
        f = layer.fmt
        xq = _c(xq, np.int8).reshape(-1)
        if xq.shape != (f.in_features,):
            raise HlsConfigError(f"xq must be int8[{f.in_features}], got shape {xq.shape}")
        codes, idx, scales, zeros = self._arrays(layer)
        y = np.zeros(f.out_features, F32)
        partial = np.zeros((f.out_features, f.groups_per_row), np.int32)
        self.lib.llmaccel_linear_mv(_ptr(codes), _ptr(idx), _ptr(scales), _ptr(zeros), _ptr(xq),
                                    ctypes.c_float(s_x), f.out_features, f.in_features, _ptr(y), _ptr(partial))
        return y, partial

    def mm(self, layer: PackedLinear, xq: np.ndarray, s_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(FP32 y [T, O], INT32 partial sums [T, O, K/G]) for T INT8 tokens."""
        if self.config.kind != "mm":
            raise HlsConfigError(f"kernel {self.config.name} is not an MM kernel (kind='mm')")
        self._check(layer)
        f = layer.fmt
        xq = _c(np.atleast_2d(xq), np.int8)
        t = xq.shape[0]
        if xq.shape[1] != f.in_features or not 1 <= t <= self.config.t_max:
            raise HlsConfigError(f"xq must be int8[T, {f.in_features}] with 1 <= T <= t_max={self.config.t_max}, "
                                 f"got {xq.shape}")
        s_x = _c(s_x, F32).reshape(-1)
        codes, idx, scales, zeros = self._arrays(layer)
        y = np.zeros((t, f.out_features), F32)
        partial = np.zeros((t, f.out_features, f.groups_per_row), np.int32)
        self.lib.llmaccel_linear_mm(_ptr(codes), _ptr(idx), _ptr(scales), _ptr(zeros), _ptr(xq), _ptr(s_x), t,
                                    f.out_features, f.in_features, _ptr(y), _ptr(partial))
        return y, partial


SFU_OPS = {"softmax": 0, "rmsnorm": 1, "layernorm": 2, "silu": 3, "silu_mul": 4, "add": 5, "mul": 6,
           "rope": 7, "quantize": 8}


class SfuKernel:
    """The SFU instance: one method per op, FP32 numpy in and out."""

    def __init__(self, config: SfuKernelConfig):
        self.config = config
        self.lib = _load(config)

    def _run(self, op: str, a, b=None, c=None, eps: float = 0.0, head_dim: int = 1):
        a = _c(a, F32).reshape(-1)
        n = a.size
        if not 1 <= n <= self.config.n_max:
            raise HlsConfigError(f"vector length {n} must be in 1..n_max={self.config.n_max}")
        b = None if b is None else _c(b, F32).reshape(-1)
        c = None if c is None else _c(c, F32).reshape(-1)
        y = np.zeros(max(n, 1), F32)
        q = np.zeros(n, np.int8)
        rc = self.lib.llmaccel_sfu(SFU_OPS[op], _ptr(a), _ptr(b), _ptr(c), ctypes.c_float(eps), n, head_dim,
                                   _ptr(y), _ptr(q))
        if rc != 0:
            raise HlsConfigError(f"SFU op {op!r} rejected (rc={rc})")
        return y, q

    def softmax(self, x):
        return self._run("softmax", x)[0]

    def rmsnorm(self, x, w, eps: float):
        return self._run("rmsnorm", x, w, eps=eps)[0]

    def layernorm(self, x, w, b, eps: float):
        return self._run("layernorm", x, w, b, eps=eps)[0]

    def silu(self, x):
        return self._run("silu", x)[0]

    def silu_mul(self, gate, up):
        return self._run("silu_mul", gate, up)[0]

    def add(self, a, b):
        return self._run("add", a, b)[0]

    def mul(self, a, b):
        return self._run("mul", a, b)[0]

    def rope(self, x, cos, sin):
        """x [heads, head_dim], cos/sin [head_dim] -> [heads, head_dim]."""
        x = np.asarray(x, F32)
        return self._run("rope", x, cos, sin, head_dim=x.shape[-1])[0].reshape(x.shape)

    def quantize(self, x) -> tuple[np.ndarray, np.float32]:
        y, q = self._run("quantize", x)
        return q, F32(y[0])


class AttentionKernel:
    def __init__(self, config: AttentionKernelConfig):
        self.config = config
        self.lib = _load(config)

    def run(self, q8, s_q, k8, s_k, v8, s_v) -> np.ndarray:
        """q8 [H, D], s_q [H]; k8/v8 [L, KVH, D]; s_k/s_v [L, KVH] -> FP32 [H, D]."""
        c = self.config
        q8 = _c(q8, np.int8)
        k8, v8 = _c(k8, np.int8), _c(v8, np.int8)
        seq_len = k8.shape[0]
        if q8.shape != (c.heads, c.head_dim):
            raise HlsConfigError(f"q8 must be [{c.heads}, {c.head_dim}], got {q8.shape}")
        if k8.shape[1:] != (c.kv_heads, c.head_dim) or v8.shape != k8.shape or not 1 <= seq_len <= c.seq_max:
            raise HlsConfigError(f"k8/v8 must be [L, {c.kv_heads}, {c.head_dim}] with 1 <= L <= {c.seq_max}, "
                                 f"got {k8.shape}, {v8.shape}")
        out = np.zeros((c.heads, c.head_dim), F32)
        self.lib.llmaccel_attention(_ptr(q8), _ptr(_c(s_q, F32)), _ptr(k8), _ptr(_c(s_k, F32)), _ptr(v8),
                                    _ptr(_c(s_v, F32)), seq_len, _ptr(out))
        return out


def layer_weight_buffers(config: DecoderLayerConfig, layers: dict[str, PackedLinear]):
    """The three weight buffers of kernels/decoder_layer.hpp: (words, fp16 scale bits, zeros)."""
    words, scales, zeros = [], [], []
    for pname in PROJECTIONS:
        layer = layers[pname]
        lc = config.linear_config(pname)
        o, k = config.shape(pname)
        want = (lc.bits, tuple(lc.nm) if lc.nm else None, lc.group_size, lc.symmetric, o, k)
        got = (layer.fmt.bits, layer.fmt.nm, layer.fmt.group_size, layer.fmt.symmetric,
               layer.fmt.out_features, layer.fmt.in_features)
        if want != got:
            raise HlsConfigError(f"{pname}: packed layer (bits, nm, group, symmetric, O, K)={got} does not match "
                                 f"the layer configuration {want}")
        words += [layer.codes.reshape(-1), layer.indices.reshape(-1)]
        scales.append(layer.scales.view(np.uint16).reshape(-1))
        if layer.zeros is not None:
            zeros.append(layer.zeros.reshape(-1))
    cat = lambda parts, dt: np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(1, dt), dt)  # noqa: E731
    return cat(words, np.uint32), cat(scales, np.uint16), cat(zeros, np.uint8)


class DecoderLayerKernel:
    """The composed decoder layer (MV path) with its own INT8 KV cache state."""

    def __init__(self, config: DecoderLayerConfig, layers: dict[str, PackedLinear], w_in: np.ndarray,
                 w_post: np.ndarray, eps: float):
        self.config = config
        self.lib = _load(config)
        self.words, self.scales, self.zeros = layer_weight_buffers(config, layers)
        c = config
        self.norm_w = _c(np.concatenate([np.asarray(w_in, F32).reshape(-1), np.asarray(w_post, F32).reshape(-1)]), F32)
        if self.norm_w.size != 2 * c.hidden:
            raise HlsConfigError(f"w_in and w_post must each have hidden={c.hidden} entries")
        self.eps = float(eps)
        self.k_cache = np.zeros((c.seq_max, c.kv_heads, c.head_dim), np.int8)
        self.v_cache = np.zeros_like(self.k_cache)
        self.k_scale = np.zeros((c.seq_max, c.kv_heads), F32)
        self.v_scale = np.zeros_like(self.k_scale)

    def step(self, x: np.ndarray, pos: int, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        """One decode step for the token at ``pos`` (hidden state x [hidden]); updates the KV cache."""
        c = self.config
        x = _c(x, F32).reshape(-1)
        if x.size != c.hidden:
            raise HlsConfigError(f"x must have hidden={c.hidden} entries, got {x.size}")
        if not 0 <= pos < c.seq_max:
            raise HlsConfigError(f"pos={pos} must be in 0..{c.seq_max - 1} (seq_max)")
        rope_cs = _c(np.concatenate([np.asarray(cos, F32).reshape(-1), np.asarray(sin, F32).reshape(-1)]), F32)
        if rope_cs.size != 2 * c.head_dim:
            raise HlsConfigError(f"cos and sin must each have head_dim={c.head_dim} entries")
        out = np.zeros(c.hidden, F32)
        self.lib.llmaccel_decoder_layer(_ptr(x), _ptr(out), int(pos), ctypes.c_float(self.eps), _ptr(self.norm_w),
                                        _ptr(rope_cs), _ptr(self.words), _ptr(self.scales), _ptr(self.zeros),
                                        _ptr(self.k_cache), _ptr(self.k_scale), _ptr(self.v_cache),
                                        _ptr(self.v_scale))
        return out
