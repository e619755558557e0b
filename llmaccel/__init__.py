"""llmaccel: co-design FPGA accelerators for LLM inference.

The design card's top-level folders (``simulator/``, ``mapping/``, ``sparse_dsp/``, ...) are the
subpackages ``llmaccel.simulator``, ``llmaccel.mapping``, ...: an install maps them there
(setup.py's ``package_dir``), so it claims only ``llmaccel`` in site-packages. In a source
checkout the folders sit next to this package, so they are added to its search path: a checkout
(a CI clone, a worktree, the mutation tool's copies) always imports its own tree, never another
installed copy.
"""
from pathlib import Path as _Path

__version__ = "0.1.0"

_checkout = _Path(__file__).resolve().parent.parent
if (_checkout / "simulator" / "__init__.py").is_file() and (_checkout / "setup.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 (the package's own search path)
