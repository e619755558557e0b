// Two slices with a fixed cascade between them: the unit the chain is built from.
`default_nettype none

module sdsp_group #(
    parameter POS = 0,         // position of slice 0 inside its cascade segment (even)
    parameter USE_PCIN = 0     // 0: the group starts a cascade segment
) (
    input  wire        clk,
    input  wire        ce,
    input  wire [15:0] x_lo,   // {slice1, slice0}
    input  wire [15:0] x_hi,
    input  wire [15:0] w,
    input  wire [47:0] pcin,
    output wire [47:0] pcout
);
    wire [47:0] p0;
    sdsp_slice #(.SKEW(POS), .USE_PCIN(USE_PCIN)) u_s0 (
        .clk(clk), .ce(ce), .x_lo(x_lo[7:0]), .x_hi(x_hi[7:0]), .w(w[7:0]), .pcin(pcin), .pcout(p0));
    sdsp_slice #(.SKEW(POS + 1), .USE_PCIN(1)) u_s1 (
        .clk(clk), .ce(ce), .x_lo(x_lo[15:8]), .x_hi(x_hi[15:8]), .w(w[15:8]), .pcin(p0), .pcout(pcout));
endmodule

`default_nettype wire
