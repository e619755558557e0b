"""Triton kernels that read llmaccel's packed format directly (decode GEMV, prefill GEMM, INT8-KV attention).

Set ``TRITON_INTERPRET=1`` before importing this package to run the kernels on
CPU tensors through Triton's interpreter (how CI checks them); on a CUDA
device they compile. See :mod:`gpu_baseline.triton.linear` and
:mod:`gpu_baseline.triton.attention`.
"""
