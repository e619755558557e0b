"""Package layout: the design card's top-level folders install as subpackages of ``llmaccel``.

The folders stay where the card puts them (``simulator/``, ``mapping/``, ...); setuptools'
``package_dir`` maps each to ``llmaccel.<folder>``, so an install claims only ``llmaccel`` in
site-packages. Everything else about the project is in pyproject.toml.
"""
from setuptools import find_packages, setup

CARD_FOLDERS = ("sparse_dsp", "simulator", "mapping", "hls_kernels", "host", "gpu_baseline", "reports")

packages = find_packages(include=["llmaccel", "llmaccel.*"])
package_dir = {"llmaccel": "llmaccel"}
for folder in CARD_FOLDERS:
    packages += [f"llmaccel.{p}" for p in find_packages(include=[folder, f"{folder}.*"])]
    package_dir[f"llmaccel.{folder}"] = folder

setup(packages=packages, package_dir=package_dir)
