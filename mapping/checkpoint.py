"""Tensor-at-a-time access to Hugging Face safetensors checkpoints.

Compression of a 7B model must not hold the checkpoint in memory, and a
memory-mapped file counts its touched pages in the process's RSS, so tensors
are read with plain positioned reads from the documented safetensors layout
(8-byte little-endian header length, JSON header, raw little-endian data).
Sharded checkpoints (``model.safetensors.index.json``) are followed.
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from sparse_dsp.errors import LlmaccelError

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64,
           "I8": np.int8, "U8": np.uint8, "I16": np.int16, "I32": np.int32, "I64": np.int64}


class CheckpointError(LlmaccelError):
    """A checkpoint directory or file that is missing, truncated or malformed."""


@dataclass(frozen=True)
class _Entry:
    file: Path
    dtype: str
    shape: tuple[int, ...]
    begin: int   # absolute file offset
    end: int


def _read_header(path: Path) -> dict[str, _Entry]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise CheckpointError(f"'{path}' is truncated: no safetensors header")
        (hlen,) = struct.unpack("<Q", raw)
        if hlen > size - 8:
            raise CheckpointError(f"'{path}' is truncated or not safetensors: header length {hlen} "
                                  f"exceeds file size {size}")
        try:
            header = json.loads(f.read(hlen))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"'{path}' has a malformed safetensors header") from None
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info.get("dtype") not in _DTYPES:
            raise CheckpointError(f"'{path}': tensor '{name}' has dtype {info.get('dtype')}; "
                                  f"allowed: {sorted(_DTYPES)}")
        b, e = info["data_offsets"]
        if base + e > size:
            raise CheckpointError(f"'{path}' is truncated: tensor '{name}' ends at byte {base + e}, "
                                  f"file has {size}")
        out[name] = _Entry(path, info["dtype"], tuple(info["shape"]), base + b, base + e)
    return out


class SafetensorsCheckpoint:
    """Read-only view of a checkpoint directory (config.json + one or more .safetensors files)."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        if not self.dir.is_dir():
            raise CheckpointError(f"checkpoint directory '{self.dir}' does not exist")
        cfg = self.dir / "config.json"
        if not cfg.is_file():
            raise CheckpointError(f"checkpoint '{self.dir}' has no config.json")
        try:
            self.config: dict = json.loads(cfg.read_text())
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"'{cfg}' is not valid JSON: {exc}") from None
        index = self.dir / "model.safetensors.index.json"
        files: list[Path]
        if index.is_file():
            weight_map = json.loads(index.read_text()).get("weight_map", {})
            files = sorted({self.dir / f for f in weight_map.values()})
        else:
            files = sorted(self.dir.glob("*.safetensors"))
        if not files:
            raise CheckpointError(f"checkpoint '{self.dir}' has no .safetensors weights")
        self._entries: dict[str, _Entry] = {}
        for f in files:
            if not f.is_file():
                raise CheckpointError(f"checkpoint shard '{f}' listed in the index is missing")
            self._entries.update(_read_header(f))

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
        if arr.size != count:
            raise CheckpointError(f"'{e.file}' is truncated inside tensor '{name}'")
        if e.dtype == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif e.dtype in ("F16", "F64"):
            arr = arr.astype(np.float32)
        return arr.reshape(e.shape)


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
