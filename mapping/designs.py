"""Load a design for compiling or simulating: find it on the preset search path, read the HLS
reports it names.

``simulator.design.load_design`` reads the YAML; a design that names csynth reports
(``hls_reports: path``, relative to the YAML's directory) gets their figures here, as typed
``ReportedUnit`` records (``simulator.design``), parsed by ``hls_kernels.flow.report``. The
simulator never reads a report itself (imports go one way); it takes the records from the
design and says in its output which value came from which report.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from llmaccel.simulator.design import AcceleratorDesign, find_design
from llmaccel.simulator.design import load_design as _load_yaml
from llmaccel.simulator.specs._yaml import SpecError


def load_design(name_or_path: str | Path | AcceleratorDesign,
                preset_path: Sequence[str | Path] = ()) -> AcceleratorDesign:
    """A design by name (searched on the preset path), YAML path, or as given, with its reports read."""
    if isinstance(name_or_path, AcceleratorDesign):
        return resolve_reports(name_or_path, None)
    path = find_design(name_or_path, preset_path)
    return resolve_reports(_load_yaml(path), path.parent)


def resolve_reports(design: AcceleratorDesign, base_dir: Path | None) -> AcceleratorDesign:
    """``design`` with the figures of the reports it names (``hls_reports``) as ``reported`` records."""
    if design.hls_reports is None:
        return design
    if design.reported:
        raise SpecError(f"design '{design.name}': give either hls_reports (a csynth.xml or a directory of them) "
                        f"or reported (figures already read), not both")
    p = Path(design.hls_reports).expanduser()
    if not p.is_absolute():
        if base_dir is None:
            raise SpecError(f"design '{design.name}': hls_reports '{design.hls_reports}' is a relative path and "
                            "the design was not read from a file; give an absolute path")
        p = base_dir / p
    from llmaccel.hls_kernels.flow.report import reported_units   # the parser lives with the HLS flow
    units = reported_units(p.resolve())
    return dataclasses.replace(design, hls_reports=None, reported=units)
