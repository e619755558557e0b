"""Per-unit golden functions of the numerics contract (docs/numerics.md), in numpy.

One golden per unit: the simulator's functional engine, the HLS C-simulation
checks and the RTL checks all compare against these, and these are checked
against the PyTorch reference in gpu_baseline.
"""
