"""Saving matplotlib figures where the user asked, without overwriting anyone's file.

A PNG we write carries ``Software: llmaccel`` in a text chunk; an existing
file is replaced only when it carries that mark (sparse_dsp.safe_paths),
and the new file appears atomically with the user's umask.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from llmaccel.sparse_dsp.safe_paths import check_output_file, write_file_atomically

SOFTWARE = "llmaccel"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _is_our_png(path: Path) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not head.startswith(_PNG_SIGNATURE):
        return "not a PNG"
    # the text chunks precede the image data (matplotlib writes them first)
    if b"Software\x00" + SOFTWARE.encode() not in head.split(b"IDAT", 1)[0]:
        return "a PNG llmaccel did not write"
    return None


def check_png_dest(path: "str | os.PathLike", flag: str = "--plot") -> Path:
    """Refuse a bad plot path before any work."""
    return check_output_file(path, flag, _is_our_png, "plot")


def save_png(fig: Any, path: "str | os.PathLike", flag: str = "--plot", dpi: int = 120) -> Path:
    """Save ``fig`` as PNG at ``path`` (atomically, marked as ours) and close it."""
    import matplotlib.pyplot as plt
    try:
        return write_file_atomically(
            path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": SOFTWARE}),
            flag, _is_our_png, "plot")
    finally:
        plt.close(fig)
