"""RTL of the sparse DSP chain, weight decoder and MV tile engine: Verilog, cocotb benches, yosys runs."""
