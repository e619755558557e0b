"""cocotb benches for the sparse DSP RTL: reusable stream drivers/monitors and one module per unit.

Only the bench modules import cocotb; the models they check against live in ``sparse_dsp``.
"""
