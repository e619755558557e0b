"""Compiler: model shape (or compressed model) + recipe + design -> a ``simulator.compiled.CompiledModel``.

Modules, one job each: ``formats`` (the input: shapes + packed formats), ``partition`` (cores'
slices and the HBM placement), ``layout`` (on-chip vectors), ``emit`` (the instructions of a
layer/head program), ``lower`` (ISA words + the compiled model), ``storage`` (instruction
storage report), ``core`` (the Compiler tying them together).
"""
from llmaccel.mapping.compiler.core import DECODE_BUCKET, DEFAULT_MAX_LEN, PREFILL_BUCKET, Compiler
from llmaccel.mapping.compiler.emit import MISC_MAX_ROWS
from llmaccel.mapping.compiler.formats import (ATTN_LEAVES, LEAF_PATH, MLP_LEAVES, CompileError, ModelFormats,
                                      formats_from_compressed, formats_from_recipe)
from llmaccel.mapping.compiler.lower import program_instructions
from llmaccel.mapping.compiler.partition import hbm_row_bytes

__all__ = ["ATTN_LEAVES", "Compiler", "CompileError", "DECODE_BUCKET", "DEFAULT_MAX_LEN", "LEAF_PATH",
           "MISC_MAX_ROWS", "MLP_LEAVES", "ModelFormats", "PREFILL_BUCKET", "formats_from_compressed",
           "formats_from_recipe", "hbm_row_bytes", "program_instructions"]
