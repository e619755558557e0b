// MV tile engine: NCH weight decoders feeding NCH sparse DSP chains in lockstep, one shared
// activation buffer (two token lanes), valid/ready streams everywhere.
//
//   s_act   : the activation vector, K/WIN entries of {window_hi, window_lo}; accepted until
//             the buffer is full (a reset starts a new vector).
//   s_code/s_idx/s_meta[c] : packed rows of chain c (rows c, c+NCH, ... of the layer).
//   m_*     : one transfer per quantization group: for every chain {scale_fp16, hi, lo}
//             (INT32 partial sums of the two token lanes, the group's FP16 scale).
// A beat fires when every decoder holds one and the buffer is loaded; the fetch register
// then holds the decoded weights and the buffer's window for the chains.
// Cycle model: sparse_dsp/mv_tile.py (composes the decoder and chain models).
`default_nettype none

module sdsp_mv_tile #(
    parameter NCH = 2,
    parameter CHAIN_LEN = 8,
    parameter N = 1,
    parameter M = 1,
    parameter CASCADE_GROUPS = 4,
    parameter BITS = 4,
    parameter K = 256,
    parameter GROUP = 128,
    parameter SYM = 1
) (
    input  wire                 clk,
    input  wire                 rst,
    input  wire                 s_act_valid,
    output wire                 s_act_ready,
    input  wire [16*WIN-1:0]    s_act_data,      // {window_hi, window_lo}
    input  wire [NCH-1:0]       s_code_valid,
    output wire [NCH-1:0]       s_code_ready,
    input  wire [32*NCH-1:0]    s_code_data,
    input  wire [NCH-1:0]       s_idx_valid,
    output wire [NCH-1:0]       s_idx_ready,
    input  wire [32*NCH-1:0]    s_idx_data,
    input  wire [NCH-1:0]       s_meta_valid,
    output wire [NCH-1:0]       s_meta_ready,
    input  wire [24*NCH-1:0]    s_meta_data,
    output wire                 m_valid,
    input  wire                 m_ready,
    output wire [80*NCH-1:0]    m_data           // per chain {scale[15:0], hi[31:0], lo[31:0]}
);

    localparam IB    = (M > 1) ? $clog2(M) : 1;
    localparam WIN   = CHAIN_LEN * M / N;
    localparam DEPTH = K / WIN;                        // buffer entries = beats per row
    localparam AW    = (DEPTH > 1) ? $clog2(DEPTH) : 1;
    localparam integer DEPTH_M1 = DEPTH - 1;
    localparam SQ    = 32;                             // scale queue depth > groups in flight
    localparam SQW   = 5;

    // ---- activation buffer load -------------------------------------------------------
    reg [AW-1:0] wptr;
    reg          loaded;
    assign s_act_ready = !loaded;
    wire act_we = s_act_valid && !loaded;
    always @(posedge clk) begin
        if (rst) begin
            wptr <= {AW{1'b0}};
            loaded <= 1'b0;
        end else if (act_we) begin
            wptr <= wptr + 1'b1;
            if (wptr == DEPTH_M1[AW-1:0]) loaded <= 1'b1;
        end
    end

    // ---- decoders -----------------------------------------------------------------------
    wire [NCH-1:0]         d_valid;
    wire [8*CHAIN_LEN*NCH-1:0]  d_w;
    wire [IB*CHAIN_LEN*NCH-1:0] d_idx;
    wire [16*NCH-1:0]      d_scale;
    /* verilator lint_off UNUSEDSIGNAL */
    // lockstep: every decoder carries the same flags, decoder 0's stand for all
    wire [NCH-1:0]         d_first, d_last;
    wire [NCH-1:0]         d_row_last;   // rows are implied by the beat counter
    /* verilator lint_on UNUSEDSIGNAL */
    wire                   fire;
    genvar c;
    generate
        for (c = 0; c < NCH; c = c + 1) begin : g_dec
            sdsp_wdec #(.BITS(BITS), .N(N), .M(M), .CHAIN_LEN(CHAIN_LEN), .K(K), .GROUP(GROUP), .SYM(SYM)) u_dec (
                .clk(clk), .rst(rst),
                .s_code_valid(s_code_valid[c]), .s_code_ready(s_code_ready[c]), .s_code_data(s_code_data[32*c +: 32]),
                .s_idx_valid(s_idx_valid[c]), .s_idx_ready(s_idx_ready[c]), .s_idx_data(s_idx_data[32*c +: 32]),
                .s_meta_valid(s_meta_valid[c]), .s_meta_ready(s_meta_ready[c]), .s_meta_data(s_meta_data[24*c +: 24]),
                .m_valid(d_valid[c]), .m_ready(fire),
                .m_w(d_w[8*CHAIN_LEN*c +: 8*CHAIN_LEN]), .m_idx(d_idx[IB*CHAIN_LEN*c +: IB*CHAIN_LEN]),
                .m_scale(d_scale[16*c +: 16]), .m_first(d_first[c]), .m_last(d_last[c]),
                .m_row_last(d_row_last[c]));
        end
    endgenerate

    // ---- join + fetch register (weights, indices, window) --------------------------------
    wire        ch_ready;
    reg         f_valid;
    reg         f_first, f_last;
    reg [8*CHAIN_LEN*NCH-1:0]  f_w;
    reg [IB*CHAIN_LEN*NCH-1:0] f_idx;
    reg [AW-1:0] bidx;                                 // beat inside the row = buffer entry
    wire [16*WIN-1:0] win;
    assign fire = (&d_valid) && loaded && (!f_valid || ch_ready);
    sdsp_act_buffer #(.WIDTH(16*WIN), .DEPTH(DEPTH)) u_act (
        .clk(clk), .we(act_we), .waddr(wptr), .wdata(s_act_data),
        .re(fire), .raddr(bidx), .rdata(win));
    always @(posedge clk) begin
        if (rst) begin
            f_valid <= 1'b0;
            bidx <= {AW{1'b0}};
        end else begin
            if (fire) begin
                f_valid <= 1'b1;
                bidx <= (bidx == DEPTH_M1[AW-1:0]) ? {AW{1'b0}} : bidx + 1'b1;
            end else if (ch_ready) begin
                f_valid <= 1'b0;
            end
        end
    end
    always @(posedge clk) begin
        if (fire) begin
            f_w <= d_w;
            f_idx <= d_idx;
            f_first <= d_first[0];
            f_last <= d_last[0];
        end
    end

    // ---- scale queue: one entry per group sent into the chains, popped with its sums -------
    reg [16*NCH-1:0] sq [0:SQ-1];
    reg [SQW-1:0]    sq_wr, sq_rd;
    wire ch_take = f_valid && ch_ready;
    wire out_take = m_valid && m_ready;
    reg [16*NCH-1:0] f_scale;
    always @(posedge clk) begin
        if (fire) f_scale <= d_scale;
    end
    always @(posedge clk) begin
        if (rst) begin
            sq_wr <= {SQW{1'b0}};
            sq_rd <= {SQW{1'b0}};
        end else begin
            if (ch_take && f_last) sq_wr <= sq_wr + 1'b1;
            if (out_take) sq_rd <= sq_rd + 1'b1;
        end
    end
    always @(posedge clk) begin
        if (ch_take && f_last) sq[sq_wr] <= f_scale;
    end
    wire [16*NCH-1:0] out_scale = sq[sq_rd];

    // ---- chains (lockstep: same valid, same ready) -----------------------------------------
    /* verilator lint_off UNUSEDSIGNAL */
    wire [NCH-1:0] c_s_ready, c_m_valid;   // lockstep: chain 0's handshake stands for all
    /* verilator lint_on UNUSEDSIGNAL */
    generate
        for (c = 0; c < NCH; c = c + 1) begin : g_chain
            wire [31:0] lo, hi;
            sdsp_chain #(.CHAIN_LEN(CHAIN_LEN), .N(N), .M(M), .CASCADE_GROUPS(CASCADE_GROUPS)) u_chain (
                .clk(clk), .rst(rst),
                .s_valid(f_valid), .s_ready(c_s_ready[c]),
                .s_w(f_w[8*CHAIN_LEN*c +: 8*CHAIN_LEN]), .s_idx(f_idx[IB*CHAIN_LEN*c +: IB*CHAIN_LEN]),
                .s_win_lo(win[8*WIN-1:0]), .s_win_hi(win[16*WIN-1:8*WIN]),
                .s_first(f_first), .s_last(f_last),
                .m_valid(c_m_valid[c]), .m_ready(m_ready), .m_lo(lo), .m_hi(hi));
            assign m_data[80*c +: 80] = {out_scale[16*c +: 16], hi, lo};
        end
    endgenerate
    assign ch_ready = c_s_ready[0];
    assign m_valid = c_m_valid[0];
endmodule

`default_nettype wire
