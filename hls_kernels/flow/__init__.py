"""Vitis HLS flow: templates (what code), writer (which files), backend (which tool), report parser.

Kept apart as hls4ml keeps them: the writer never runs a tool, the backend
never generates code, and the report parser is a pure function of a file.
"""
