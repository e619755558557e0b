"""Build one kernel configuration into a shared library with g++ and the ap_types headers.

C-simulation the hls4ml way: the same header-only kernels Vitis HLS
synthesises are compiled by g++ against Xilinx's open ``ap_types`` headers
into a ``.so`` that Python calls through ctypes. Builds are cached by a
content hash of everything that can change the binary (kernel sources, the
generated instance header, flags, compiler version, ap_types headers); the
library is written under a temporary name and renamed into place, so two
pytest-xdist workers building the same configuration never see a half-written
file.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

from llmaccel.errors import LlmaccelError

PACKAGE_DIR = Path(__file__).resolve().parent
INCLUDE_DIR = PACKAGE_DIR / "include"
TOPS_DIR = PACKAGE_DIR / "tops"
ABI_DIR = PACKAGE_DIR / "csim_abi"
CACHE_ENV = "LLMACCEL_HLS_CACHE"
# -ffp-contract=off: the numerics contract forbids fused multiply-add.
# -fno-fast-math: keep IEEE semantics (no reassociation of FP32 sums).
CXXFLAGS = ("-std=c++14", "-O2", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math",
            "-Wno-unknown-pragmas", "-Wno-unused-variable")


class HlsToolError(LlmaccelError):
    """A tool the HLS flow needs (g++, ap_types headers, Vitis HLS) is missing or failed."""


def find_ap_types() -> Path:
    """The directory holding ap_int.h: $XILINX_HLS/include first, else the hls4ml package's copy."""
    xilinx = os.environ.get("XILINX_HLS")
    if xilinx and (Path(xilinx) / "include" / "ap_int.h").is_file():
        return Path(xilinx) / "include"
    try:
        import hls4ml  # noqa: PLC0415 (optional dependency)
        cand = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
        if (cand / "ap_int.h").is_file():
            return cand
    except ImportError:
        pass
    raise HlsToolError("ap_types headers not found: install hls4ml (pip install 'llmaccel[hls]' or "
                       "pip install hls4ml), or set XILINX_HLS to a Vitis HLS install with include/ap_int.h")


def find_cxx() -> str:
    """The C++ compiler: $CXX if set, else g++ on PATH."""
    name = os.environ.get("CXX", "g++")
    path = shutil.which(name)
    if path is None:
        raise HlsToolError(f"C++ compiler {name!r} not found on PATH: install g++ (e.g. apt-get install g++) "
                           "or set CXX to a g++-compatible compiler")
    return path


def cache_dir() -> Path:
    d = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "llmaccel" / "hls")
    d.mkdir(parents=True, exist_ok=True)
    return d


@lru_cache(maxsize=None)
def _compiler_version(cxx: str) -> str:
    return subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout


def _tree_digest(*dirs: Path) -> str:
    h = hashlib.sha256()
    for d in dirs:
        for p in sorted(d.rglob("*")):
            if p.is_file() and p.suffix in (".hpp", ".h", ".cpp"):
                h.update(str(p.relative_to(d)).encode())
                h.update(p.read_bytes())
    return h.hexdigest()


@lru_cache(maxsize=None)
def _external_digest(ap_types: Path) -> str:
    return _tree_digest(ap_types)  # vendor headers: hashed once per process


def build_key(config, cxx: str, ap_types: Path) -> str:
    h = hashlib.sha256()
    for part in (_tree_digest(INCLUDE_DIR, TOPS_DIR, ABI_DIR), config.instance_header(), " ".join(CXXFLAGS),
                 _compiler_version(cxx), _external_digest(ap_types)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def compile_command(cxx: str, source: Path, instance_dir: Path, ap_types: Path, output: Path) -> list[str]:
    return [cxx, *CXXFLAGS, f"-I{instance_dir}", f"-I{INCLUDE_DIR}", f"-I{TOPS_DIR}", f"-I{ap_types}",
            str(source), "-o", str(output)]


def build(config) -> Path:
    """Path of the shared library for ``config``, compiling it unless the cache has it."""
    cxx = find_cxx()
    ap_types = find_ap_types()
    out = cache_dir() / f"{config.name}-{build_key(config, cxx, ap_types)}.so"
    if out.is_file():
        return out
    from llmaccel.hls_kernels.configs import family_of   # the family record names the C-simulation entry point
    source = family_of(config).abi
    with tempfile.TemporaryDirectory(prefix=f".{config.name}-", dir=out.parent) as tmp:
        tmp = Path(tmp)
        (tmp / "llmaccel_instance.hpp").write_text(config.instance_header())
        lib = tmp / "kernel.so"
        proc = subprocess.run(compile_command(cxx, source, tmp, ap_types, lib), capture_output=True, text=True)
        if proc.returncode != 0:
            raise HlsToolError(f"g++ failed to build {config.name}:\n{proc.stderr[-4000:]}")
        os.replace(lib, out)  # atomic: readers see no file or the whole library
    return out
