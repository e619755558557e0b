"""Tensor-at-a-time access to Hugging Face safetensors checkpoints, validated at the edge.

Compression of a 7B model must not hold the checkpoint in memory, and a
memory-mapped file counts its touched pages in the process's RSS, so tensors
are read with plain positioned reads from the documented safetensors layout
(8-byte little-endian header length, JSON header, raw little-endian data).
Sharded checkpoints (``model.safetensors.index.json``) are followed.

Because the reads trust the header, the header is checked whole when the
checkpoint is opened, and every problem found is listed in one
:class:`CheckpointError`: byte ranges contiguous from 0, in range and equal
to dtype x shape (then safetensors' own header check as well), floating
dtypes only, no tensor in two shards, the index naming plain files in the
directory; and against ``config.json``: every tensor a model of that config
has (its family's :class:`simulator.families.Architecture` lists them), with
its shape, the layer count, and no tensor the config does not explain (each
one named).

The rest of mapping reads tensors by *canonical* name through
:func:`layer_tensors` and :func:`model_tensors`: projections as [out, in]
FP32 (GPT-2's fused, transposed Conv1D ``c_attn`` split into q/k/v), their
biases, the norms, the embeddings, learned positions from position 0 (OPT's
offset of 2 removed) and the LM head (the embedding when tied). Only this
module knows a family's tensor paths.
"""
from __future__ import annotations

import json
import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from llmaccel import strict_json
from llmaccel.errors import LlmaccelError

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64,
           "I8": np.int8, "U8": np.uint8, "I16": np.int16, "I32": np.int32, "I64": np.int64}
WEIGHT_DTYPES = ("BF16", "F16", "F32", "F64")     # a checkpoint's weights are floating point
MAX_HEADER_BYTES = 100_000_000                    # safetensors' own limit on the JSON header
# the JSON files of a tokenizer directory, read strictly before transformers reads them
TOKENIZER_JSON = ("tokenizer_config.json", "special_tokens_map.json", "tokenizer.json", "added_tokens.json")
_MAX_LISTED = 12                                   # per kind of problem, so a wholly wrong file stays readable
# Buffers some transformers versions saved next to the weights; recomputed from config.json, never read:
# Llama's RoPE inv_freq, GPT-2's causal-mask buffers.
_IGNORABLE = re.compile(r"^(model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq"
                        r"|transformer\.h\.\d+\.attn\.(bias|masked_bias))$")


class CheckpointError(LlmaccelError):
    """A checkpoint directory or file that is missing, truncated, malformed or inconsistent with its config."""


@dataclass(frozen=True)
class _Entry:
    file: Path
    dtype: str
    shape: tuple[int, ...]
    begin: int   # absolute file offset
    end: int


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _read_header(path: Path, problems: list[str], named: set[str]) -> dict[str, _Entry]:
    """The valid tensors of one safetensors file; what is wrong with its header goes to ``problems``
    and the name of every tensor it declares, valid or not, to ``named``."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            problems.append(f"'{path.name}' is truncated: no safetensors header ({size} bytes)")
            return {}
        (hlen,) = struct.unpack("<Q", raw)
        if hlen > size - 8 or hlen > MAX_HEADER_BYTES:
            problems.append(f"'{path.name}' is truncated or not safetensors: header length {hlen} exceeds "
                            f"the file size {size}" if hlen > size - 8 else
                            f"'{path.name}': header length {hlen} exceeds safetensors' limit {MAX_HEADER_BYTES}")
            return {}
        try:
            header = strict_json.loads(f.read(hlen), f"'{path.name}' safetensors header", CheckpointError,
                                       expect_object=True)
        except CheckpointError as exc:
            problems.append(str(exc))
            return {}
    base, data_len = 8 + hlen, size - 8 - hlen
    meta = header.get("__metadata__")
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        problems.append(f"'{path.name}': __metadata__ must map names to strings")
    out: dict[str, _Entry] = {}
    spans: list[tuple[int, int, str]] = []
    bad: list[str] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        named.add(name)
        where = f"'{path.name}': tensor '{name}'"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            bad.append(f"{where} must have exactly the fields dtype, shape, data_offsets")
            continue
        dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        ok = True
        if dtype not in WEIGHT_DTYPES:
            bad.append(f"{where} has dtype {dtype!r}; allowed: {list(WEIGHT_DTYPES)}")
            ok = False
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            bad.append(f"{where} has shape {shape!r}; expected a list of non-negative integers")
            ok = False
        if not (isinstance(offs, list) and len(offs) == 2 and all(_is_int(o) for o in offs)):
            bad.append(f"{where} has data_offsets {offs!r}; expected [begin, end] integers")
            continue
        b, e = offs
        if b < 0 or e < b:
            bad.append(f"{where} has data_offsets [{b}, {e}]; expected 0 <= begin <= end")
            continue
        spans.append((b, e, name))
        if not ok:
            continue
        nbytes = math.prod(shape) * np.dtype(_DTYPES[dtype]).itemsize   # exact: no int64 wrap-around
        if e - b != nbytes:
            bad.append(f"{where}: dtype {dtype} x shape {shape} is {nbytes} bytes but data_offsets [{b}, {e}] "
                       f"span {e - b}")
            continue
        out[name] = _Entry(path, dtype, tuple(shape), base + b, base + e)
    pos, prev = 0, None
    for b, e, name in sorted(spans):
        if b < pos:
            bad.append(f"'{path.name}': tensors '{prev}' and '{name}' overlap (bytes {b}..{min(pos, e)} of the data)")
        elif b > pos:
            bad.append(f"'{path.name}': {b - pos} bytes before tensor '{name}' belong to no tensor "
                       "(data_offsets must be contiguous)")
        if e >= pos:
            pos, prev = e, name
    if pos > data_len:
        bad.append(f"'{path.name}' is truncated: tensor '{prev}' ends at byte {pos} of the data, the file holds "
                   f"{data_len} data bytes")
    elif pos < data_len:
        bad.append(f"'{path.name}': {data_len - pos} bytes after the last tensor belong to no tensor")
    if not bad:
        try:   # safetensors' own header validation, as a second opinion on what we accepted
            from safetensors import safe_open
            with safe_open(str(path), framework="numpy"):
                pass
        except Exception as exc:  # its error types are not part of its public API
            bad.append(f"'{path.name}': safetensors refuses the header ({exc})")
    problems.extend(bad)
    return out


def _listed(kind: str, items: list[str]) -> Optional[str]:
    if not items:
        return None
    more = f" (and {len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
    return f"{kind}: " + ", ".join(items[:_MAX_LISTED]) + more


class SafetensorsCheckpoint:
    """Read-only view of a checkpoint directory (config.json + one or more .safetensors files).

    Opening it validates every header and, for a supported family's ``config.json``, every tensor
    against the config; all problems are raised together as one :class:`CheckpointError`.
    A checkpoint saved from the base model (GPT-2's ``h.0...``/``wte`` without ``transformer.``)
    has its names read with the full model's prefix.
    """

    def __init__(self, directory: str | os.PathLike, check_config: bool = True):
        self.dir = Path(directory)
        if not self.dir.is_dir():
            raise CheckpointError(f"checkpoint directory '{self.dir}' does not exist")
        cfg = self.dir / "config.json"
        if not cfg.is_file():
            raise CheckpointError(f"checkpoint '{self.dir}' has no config.json")
        self.config: dict = strict_json.read(cfg, CheckpointError, expect_object=True)
        problems: list[str] = []
        files, weight_map = self._shard_files(problems)
        self._entries: dict[str, _Entry] = {}
        self._named: set[str] = set()          # every tensor a header declares, also the invalid ones
        twice: list[str] = []
        for f in files:
            for name, entry in _read_header(f, problems, self._named).items():
                if name in self._entries:
                    twice.append(f"'{name}' ({self._entries[name].file.name} and {f.name})")
                self._entries[name] = entry
        if twice:
            problems.append(_listed("tensors stored in two shards", twice))
        if weight_map is not None:
            self._check_index(weight_map, problems)
        self._add_base_prefix()
        self.spec = None
        if check_config:
            self.spec = self._check_against_config(problems)
        if problems:
            raise CheckpointError(f"checkpoint '{self.dir}' is inconsistent ({len(problems)} problem"
                                  f"{'s' if len(problems) > 1 else ''}):\n  - " + "\n  - ".join(problems))

    def _shard_files(self, problems: list[str]) -> tuple[list[Path], Optional[dict]]:
        index = self.dir / "model.safetensors.index.json"
        if not index.is_file():
            files = sorted(self.dir.glob("*.safetensors"))
            if not files:
                raise CheckpointError(f"checkpoint '{self.dir}' has no .safetensors weights")
            return files, None
        weight_map = strict_json.read(index, CheckpointError, expect_object=True).get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise CheckpointError(f"{index}: field 'weight_map' must map tensor names to shard file names")
        files = []
        for shard in sorted(set(weight_map.values())):
            if shard in ("", ".", "..") or "/" in shard or "\\" in shard or os.path.isabs(shard):
                problems.append(f"the index names shard '{shard}', which is not a file name in the checkpoint directory")
            elif (self.dir / shard).is_symlink() and not Path(os.path.realpath(self.dir / shard)).is_relative_to(
                    Path(os.path.realpath(self.dir))):
                problems.append(f"shard '{shard}' is a symbolic link leading out of the checkpoint directory")
            elif not (self.dir / shard).is_file():
                problems.append(f"checkpoint shard '{shard}' listed in the index is missing")
            else:
                files.append(self.dir / shard)
        return files, weight_map

    def _check_index(self, weight_map: dict, problems: list[str]) -> None:
        wrong = [f"'{n}' (index: {s}, stored in {self._entries[n].file.name})" for n, s in weight_map.items()
                 if n in self._entries and self._entries[n].file.name != s]
        absent = [f"'{n}'" for n, s in weight_map.items() if n not in self._entries and (self.dir / s).is_file()]
        unindexed = [f"'{n}'" for n in self._entries if n not in weight_map]
        for kind, items in (("tensors the index places in another shard", wrong),
                            ("tensors the index lists but no shard stores", absent),
                            ("tensors stored but not in the index", unindexed)):
            if items:
                problems.append(_listed(kind, items))

    def _add_base_prefix(self) -> None:
        """Names of a base-model save (no ``transformer.``/``model.`` prefix) read as the full model's."""
        try:
            from llmaccel.mapping.layer_math import shape_from_config
            arch = shape_from_config(self.config).arch
        except LlmaccelError:
            return   # reported by _check_against_config
        top = arch.embed.split(".", 1)[0] + "."
        if arch.embed + ".weight" in self._named or arch.embed[len(top):] + ".weight" not in self._named:
            return
        full = lambda n: n if n.startswith("lm_head.") else top + n
        self._entries = {full(n): e for n, e in self._entries.items()}
        self._named = {full(n) for n in self._named}

    def _check_against_config(self, problems: list[str]):
        """Every tensor a model of this config has, with its shape; nothing else. Returns the ModelSpec."""
        from llmaccel.mapping.layer_math import shape_from_config
        try:
            spec = shape_from_config(self.config, str(self.dir / "config.json"))
        except LlmaccelError as exc:
            problems.append(str(exc))
            return None
        want = expected_tensors(spec, lm_head_stored="lm_head.weight" in self._named)
        layer = re.compile("^" + re.escape(spec.arch.layer_prefix).replace(r"\{i\}", r"(\d+)"))
        stored_layers = sorted({int(m.group(1)) for n in self._named if (m := layer.match(n))})
        if stored_layers and stored_layers != list(range(spec.num_layers)):
            problems.append(f"config.json says num_hidden_layers={spec.num_layers} but the checkpoint stores "
                            f"layers {_ranges(stored_layers)}")
        missing = [f"'{n}'" for n in want if n not in self._named]
        shapes = []
        for n, shape in want.items():
            got = self._entries.get(n)
            if got is not None and got.shape != shape:
                hint = " (transposed?)" if got.shape == shape[::-1] else ""
                shapes.append(f"'{n}' is {list(got.shape)}, config.json implies {list(shape)}{hint}")
        extra = [f"'{n}'" for n in sorted(self._named) if n not in want and not _IGNORABLE.match(n)
                 and not ((m := layer.match(n)) and int(m.group(1)) >= spec.num_layers)]
        for kind, items in (("tensors config.json implies that are missing", missing),
                            ("tensors whose shape disagrees with config.json", shapes),
                            ("tensors config.json does not explain", extra)):
            if items:
                problems.append(_listed(kind, items))
        return spec

    def keys(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def shape(self, name: str) -> tuple[int, ...]:
        return self._entry(name).shape

    def _entry(self, name: str) -> _Entry:
        if name not in self._entries:
            raise CheckpointError(f"checkpoint '{self.dir}' has no tensor '{name}'")
        return self._entries[name]

    def get(self, name: str) -> np.ndarray:
        """The tensor as float32 (floating dtypes) or its own integer dtype."""
        e = self._entry(name)
        count = int(np.prod(e.shape)) if e.shape else 1
        with open(e.file, "rb") as f:
            f.seek(e.begin)
            arr = np.fromfile(f, dtype=np.dtype(_DTYPES[e.dtype]).newbyteorder("<"), count=count)
        # (the size was checked against the header at open; a file shortened since is caught here)
        if arr.size != count:
            raise CheckpointError(f"'{e.file}' is truncated inside tensor '{name}'")
        if e.dtype == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif e.dtype in ("F16", "F64"):
            arr = arr.astype(np.float32)
        return arr.reshape(e.shape)


def expected_tensors(spec, lm_head_stored: bool = False) -> dict[str, tuple[int, ...]]:
    """Every tensor (HF name -> shape) a checkpoint of ``spec`` holds, from its family's description."""
    a, h = spec.arch, spec.hidden_size
    want: dict[str, tuple[int, ...]] = {f"{a.embed}.weight": (spec.vocab_size, h), f"{a.final_norm}.weight": (h,)}
    if a.norm.has_bias:
        want[f"{a.final_norm}.bias"] = (h,)
    if a.learned_positions is not None:
        want[f"{a.learned_positions.hf}.weight"] = (spec.max_position_embeddings + a.learned_positions.offset, h)
    if not spec.tie_word_embeddings or lm_head_stored:
        want[f"{a.lm_head}.weight"] = (spec.vocab_size, h)
    dims = {leaf: (o, k) for leaf, o, k in spec.linear_shapes()}
    for i in range(spec.num_layers):
        pre = a.prefix(i)
        for nm in (a.attn_norm, a.mlp_norm):
            want[f"{pre}{nm}.weight"] = (h,)
            if a.norm.has_bias:
                want[f"{pre}{nm}.bias"] = (h,)
        fused: dict[str, list] = {}
        for p in a.projections:
            fused.setdefault(p.hf, []).append(p)
        for hf, parts in fused.items():
            o = sum(dims[p.leaf][0] for p in parts)
            k = dims[parts[0].leaf][1]
            want[f"{pre}{hf}.weight"] = (k, o) if parts[0].layout == "conv1d" else (o, k)
            if parts[0].bias:
                want[f"{pre}{hf}.bias"] = (o,)
    return want


def layer_tensors(ckpt: "SafetensorsCheckpoint", spec, i: int) -> dict[str, np.ndarray]:
    """Layer ``i`` by canonical name: each projection leaf [out, in] FP32 and ``leaf.bias``; the norms as
    ``input_layernorm``/``post_attention_layernorm`` (+ ``.bias`` for LayerNorm)."""
    a = spec.arch
    pre = a.prefix(i)
    out: dict[str, np.ndarray] = {}
    cache: dict[str, np.ndarray] = {}

    def read(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = ckpt.get(name)
        return cache[name]

    for p in a.projections:
        w, b = read(p.hf_weight(pre)), read(p.hf_bias(pre)) if p.bias else None
        if p.layout == "conv1d":
            w = w.T
        if p.part is not None:
            idx, n = p.part
            rows = w.shape[0] // n
            w = w[idx * rows:(idx + 1) * rows]
            b = None if b is None else b[idx * rows:(idx + 1) * rows]
        out[p.leaf] = np.ascontiguousarray(w, dtype=np.float32)
        if b is not None:
            out[p.leaf + ".bias"] = np.ascontiguousarray(b, dtype=np.float32)
    for canon, hf in (("input_layernorm", a.attn_norm), ("post_attention_layernorm", a.mlp_norm)):
        out[canon] = read(f"{pre}{hf}.weight")
        if a.norm.has_bias:
            out[canon + ".bias"] = read(f"{pre}{hf}.bias")
    return out


def model_tensors(ckpt: "SafetensorsCheckpoint", spec, head: bool = True) -> dict[str, np.ndarray]:
    """The tensors outside the layers by canonical name: ``embed_tokens``, ``embed_positions``
    ([max_position_embeddings, hidden], row p = position p: OPT's offset removed), ``norm``
    (+ ``norm.bias``) and, if ``head``, ``lm_head`` (the embedding when tied and not stored)."""
    a = spec.arch
    out = {"embed_tokens": ckpt.get(f"{a.embed}.weight"), "norm": ckpt.get(f"{a.final_norm}.weight")}
    if a.norm.has_bias:
        out["norm.bias"] = ckpt.get(f"{a.final_norm}.bias")
    if a.learned_positions is not None:
        lp = a.learned_positions
        out["embed_positions"] = np.ascontiguousarray(ckpt.get(f"{lp.hf}.weight")[lp.offset:])
    if head:
        name = f"{a.lm_head}.weight"
        out["lm_head"] = ckpt.get(name) if name in ckpt else out["embed_tokens"]
    return out


def _ranges(xs: list[int]) -> str:
    """[0, 1, 2, 3, 7] -> '0..3, 7'."""
    out, start = [], xs[0]
    for a, b in zip(xs, xs[1:] + [None]):
        if b != a + 1:
            out.append(str(start) if start == a else f"{start}..{a}")
            start = b
    return ", ".join(out)


def write_safetensors_streaming(path: str | os.PathLike, specs: list[tuple[str, str, tuple[int, ...]]],
                                produce: "Iterator[np.ndarray]") -> None:
    """Write a safetensors file tensor by tensor: ``specs`` gives (name, dtype, shape) in order and
    ``produce`` yields each array in that order, so no more than one tensor is in memory."""
    header, offset = {}, 0
    for name, dtype, shape in specs:
        nbytes = int(np.prod(shape)) * np.dtype(_DTYPES[dtype]).itemsize
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for (name, dtype, shape), arr in zip(specs, produce):
            arr = np.ascontiguousarray(arr, dtype=np.dtype(_DTYPES[dtype]).newbyteorder("<"))
            if arr.shape != tuple(shape):
                raise ValueError(f"tensor '{name}' has shape {arr.shape}, expected {shape}")
            arr.tofile(f)
    os.replace(tmp, path)


def load_local_tokenizer(path: "str | os.PathLike", what: str = "tokenizer"):
    """A checkpoint's own tokenizer, from a local directory only, as data only.

    ``local_files_only=True``: a name that is not a local directory is never looked up on a hub.
    ``trust_remote_code=False``: a directory whose ``auto_map`` points at its own Python is an
    error, never a prompt (transformers asks on stdin when the flag is left unset) and never
    code we run.
    """
    p = Path(path)
    if not p.is_dir():
        raise CheckpointError(f"{what} '{path}' is not a local directory; llmaccel loads tokenizers only from "
                              "local checkpoint directories and never downloads one")
    for name in TOKENIZER_JSON:     # transformers reads these with json.load: a key twice or NaN would pass
        if (p / name).is_file():
            strict_json.read(p / name, CheckpointError, expect_object=True)
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(str(p), local_files_only=True, trust_remote_code=False)
    except ValueError as exc:
        if "trust_remote_code" in str(exc) or "custom code" in str(exc):
            raise CheckpointError(f"{what} '{path}' needs its own Python code (auto_map in tokenizer_config.json); "
                                  "llmaccel never runs code from an input: use a tokenizer whose tokenizer_class "
                                  "is a transformers class") from None
        raise CheckpointError(f"{what} in '{path}' could not be loaded: {exc}") from None
    except (OSError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{what} in '{path}' could not be loaded: {exc}") from None
