"""Verilog-2005 sources of the RTL units (package data)."""
