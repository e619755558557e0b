// Activation buffer of the MV tile: one entry per chain beat, {window_hi, window_lo}.
// Written once per activation vector from a stream, read synchronously (one-cycle latency,
// read enable holds the output while the engine stalls), so yosys can map it onto block RAM.
`default_nettype none

module sdsp_act_buffer #(
    parameter WIDTH = 128,   // bits per entry: 2 lanes x window x 8
    parameter DEPTH = 16     // entries: K / window
) (
    input  wire             clk,
    input  wire             we,
    input  wire [AW-1:0]    waddr,
    input  wire [WIDTH-1:0] wdata,
    input  wire             re,
    input  wire [AW-1:0]    raddr,
    output reg  [WIDTH-1:0] rdata
);
    localparam AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;

    reg [WIDTH-1:0] mem [0:DEPTH-1];
    always @(posedge clk) begin
        if (we) mem[waddr] <= wdata;
    end
    always @(posedge clk) begin
        if (re) rdata <= mem[raddr];
    end
endmodule

`default_nettype wire
