"""The functional (bit-accurate) engine: executes a CompiledModel's ISA words on the packed weights.

Modules, one job each: ``weights`` (what the engine needs of a compressed model), ``memory`` (the
HBM image: placed regions, decoded rows, KV cache), ``units`` (each unit's arithmetic from the
goldens), ``engine`` (decode and execute the words).
"""
from llmaccel.simulator.functional.engine import FunctionalEngine
from llmaccel.simulator.functional.weights import F32, FunctionalError, ModelWeights

__all__ = ["F32", "FunctionalEngine", "FunctionalError", "ModelWeights"]
