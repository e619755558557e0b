// Sparse DSP chain building blocks: one DSP48E2-style slice and a group of two.
//
// A slice multiplies the packed activation pair A = (x_hi << 18) + x_lo (27 bits) by one
// shared INT8 weight on the 18-bit B port (AMD WP486), and adds the product to the packed
// cascade input PCIN (or to zero at the head of a cascade segment). Registers follow the
// DSP48E2 pipeline (A/B, M, P) so that yosys maps each slice onto one DSP48E2.
// SKEW extra A/B registers delay this slice's operands by its position in the cascade
// segment, so that PCIN (one P register per upstream slice) lines up with the same beat.
// Bit/cycle model: sparse_dsp/dsp_chain.py.
`default_nettype none

module sdsp_slice #(
    parameter SKEW = 0,        // slice position inside its packed cascade segment
    parameter USE_PCIN = 0     // 0: head of a segment (PCIN ignored)
) (
    input  wire               clk,
    input  wire               ce,
    input  wire signed [7:0]  x_lo,
    input  wire signed [7:0]  x_hi,
    input  wire signed [7:0]  w,
    input  wire        [47:0] pcin,
    output wire        [47:0] pcout
);
    // A/B registers, SKEW+1 deep (the first is the DSP's own AREG/BREG).
    reg [27*(SKEW+1)-1:0] a_sr;
    reg [8*(SKEW+1)-1:0]  b_sr;
    wire [26:0] a_packed = {x_hi[7], x_hi, 18'd0} + {{19{x_lo[7]}}, x_lo};
    always @(posedge clk) begin
        if (ce) begin
            a_sr[26:0] <= a_packed;
            b_sr[7:0]  <= w;
        end
    end
    genvar k;
    generate
        for (k = 1; k <= SKEW; k = k + 1) begin : g_skew
            always @(posedge clk) begin
                if (ce) begin
                    a_sr[27*k +: 27] <= a_sr[27*(k-1) +: 27];
                    b_sr[8*k +: 8]   <= b_sr[8*(k-1) +: 8];
                end
            end
        end
    endgenerate

    wire signed [26:0] a_op = a_sr[27*SKEW +: 27];
    wire signed [17:0] b_op = {{10{b_sr[8*SKEW+7]}}, b_sr[8*SKEW +: 8]};
    wire signed [44:0] prod = a_op * b_op;           // 27 x 18 multiply
    reg  [47:0] m_r;                                 // MREG
    reg  [47:0] p_r;                                 // PREG
    wire [47:0] p_in = (USE_PCIN != 0) ? pcin : 48'd0;
    always @(posedge clk) begin
        if (ce) begin
            m_r <= {{3{prod[44]}}, prod};
            p_r <= p_in + m_r;
        end
    end
    assign pcout = p_r;
endmodule

`default_nettype wire
