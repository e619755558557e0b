"""Preset YAML package data (a package so setuptools installs the files)."""
