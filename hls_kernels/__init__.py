"""Vitis HLS kernel library of llmaccel and its Python side.

``include/llmaccel_hls/`` holds the header-only C++ (primitives, kernels,
configuration structs), ``tops/`` the thin Vitis kernel tops; ``configs``
describes kernel instances as data, ``build`` compiles one with g++ and the
ap_types headers, ``csim`` calls it on numpy arrays, and ``flow`` emits Vitis
HLS projects and parses their reports. See docs/hls.md.
"""
