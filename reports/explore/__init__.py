"""Design-space exploration: sweep accelerator designs x recipes x workloads, prune with the
analytical bound, simulate on Ray, store every figure in SQLite, and find the Pareto fronts.

Python API::

    from llmaccel.reports.explore import load_spec, explore
    result = explore(load_spec("examples/explore-u280.yaml"), store="out/explore-u280.sqlite")
    for row in result.front_rows(): ...

``llmaccel explore SPEC.yaml`` is the same call from the command line.
"""
from llmaccel.reports.explore.engine import ExploreResult, explore
from llmaccel.reports.explore.spec import OBJECTIVES, ExploreSpec, load_spec

__all__ = ["explore", "load_spec", "ExploreSpec", "ExploreResult", "OBJECTIVES"]
