// Configurable sparse DSP chain: CHAIN_LEN slices in groups of two, a sparse activation MUX
// per slice, packed cascades of 2*CASCADE_GROUPS slices, an overflow-adjust (unpack) node at
// the end of every cascade segment, a pipelined reduction tree, and a group accumulator.
//
// One beat per clock: CHAIN_LEN kept INT8 weights, their in-block N:M indices, and the
// activation window (CHAIN_LEN/N blocks of M columns) of two token lanes. Output: the two
// INT32 partial sums of a quantization group, on the beat flagged s_last.
// Flow control: a waiting output freezes every register (global clock enable), so
// s_ready = !(m_valid && !m_ready). Latency (edges from a last beat taken to its sums taken):
// 5 + 2*CASCADE_GROUPS + ceil(log2(segments)). Model: sparse_dsp/dsp_chain.py.
`default_nettype none

module sdsp_chain #(
    parameter CHAIN_LEN = 8,       // slices, even, <= 24
    parameter N = 1,               // kept per block (1 with M = 1: dense)
    parameter M = 1,               // block size
    parameter CASCADE_GROUPS = 4   // groups per packed cascade segment (power of 2, <= 4)
) (
    input  wire                       clk,
    input  wire                       rst,
    input  wire                       s_valid,
    output wire                       s_ready,
    input  wire [8*CHAIN_LEN-1:0]     s_w,
    input  wire [IB*CHAIN_LEN-1:0]    s_idx,
    input  wire [8*WIN-1:0]           s_win_lo,
    input  wire [8*WIN-1:0]           s_win_hi,
    input  wire                       s_first,
    input  wire                       s_last,
    output reg                        m_valid,
    input  wire                       m_ready,
    output wire [31:0]                m_lo,
    output wire [31:0]                m_hi
);
    // Number of nodes on tree level l over n leaves: ceil(n / 2**l).
    function integer nodes;
        input integer n;
        input integer l;
        begin
            nodes = (n + (1 << l) - 1) >> l;
        end
    endfunction
    // First node of level l in the flat tree register (levels stored one after the other).
    function integer lvl_off;
        input integer n;
        input integer l;
        integer t;
        begin
            lvl_off = 0;
            for (t = 0; t < l; t = t + 1) lvl_off = lvl_off + nodes(n, t);
        end
    endfunction

    localparam IB     = (M > 1) ? $clog2(M) : 1;
    localparam WIN    = CHAIN_LEN * M / N;
    localparam GROUPS = CHAIN_LEN / 2;
    localparam SEGS   = GROUPS / CASCADE_GROUPS;
    localparam SD     = 2 * CASCADE_GROUPS;
    localparam DEPTH  = $clog2(SEGS);
    localparam CTRL   = 4 + SD + DEPTH;   // stages before the accumulator

    wire ce = !(m_valid && !m_ready);
    assign s_ready = ce;
    wire take = s_valid && ce;

    // ---- stage 1: input register ----------------------------------------------------
    reg [8*CHAIN_LEN-1:0]  r_w;
    /* verilator lint_off UNUSEDSIGNAL */
    reg [IB*CHAIN_LEN-1:0] r_idx;   // unused when dense (M = 1): the MUX is then a wire
    /* verilator lint_on UNUSEDSIGNAL */
    reg [8*WIN-1:0]        r_lo, r_hi;
    always @(posedge clk) begin
        if (ce) begin
            r_w   <= s_w;
            r_idx <= s_idx;
            r_lo  <= s_win_lo;
            r_hi  <= s_win_hi;
        end
    end

    // control travels beside the data: {valid, first, last} per stage
    reg [CTRL-1:0] c_valid, c_first, c_last;
    always @(posedge clk) begin
        if (rst) begin
            c_valid <= {CTRL{1'b0}};
        end else if (ce) begin
            c_valid <= {c_valid[CTRL-2:0], take};
        end
    end
    always @(posedge clk) begin
        if (ce) begin
            c_first <= {c_first[CTRL-2:0], s_first};
            c_last  <= {c_last[CTRL-2:0], s_last};
        end
    end

    // ---- sparse MUX + groups (stages 2 .. 3+SD) -------------------------------------
    wire [8*CHAIN_LEN-1:0] x_lo, x_hi;
    wire [48*GROUPS-1:0]   pc;
    genvar j, g, l, i;
    generate
        for (j = 0; j < CHAIN_LEN; j = j + 1) begin : g_mux
            if (M > 1) begin : g_sparse
                wire [IB-1:0] idx = r_idx[IB*j +: IB];
                localparam integer BASE = (j / N) * M;
                wire [15:0] pos = BASE[15:0] + {{(16-IB){1'b0}}, idx};
                assign x_lo[8*j +: 8] = r_lo[8*pos +: 8];
                assign x_hi[8*j +: 8] = r_hi[8*pos +: 8];
            end else begin : g_dense
                assign x_lo[8*j +: 8] = r_lo[8*j +: 8];
                assign x_hi[8*j +: 8] = r_hi[8*j +: 8];
            end
        end
        for (g = 0; g < GROUPS; g = g + 1) begin : g_grp
            localparam POS = (2 * g) % SD;
            wire [47:0] pcin;
            if (POS == 0) begin : g_head
                assign pcin = 48'd0;
            end else begin : g_casc
                assign pcin = pc[48*(g-1) +: 48];
            end
            sdsp_group #(.POS(POS), .USE_PCIN(POS != 0)) u_grp (
                .clk(clk), .ce(ce),
                .x_lo(x_lo[16*g +: 16]), .x_hi(x_hi[16*g +: 16]), .w(r_w[16*g +: 16]),
                .pcin(pcin), .pcout(pc[48*g +: 48]));
        end
    endgenerate

    // ---- overflow adjust at every segment end (stage 4+SD), then the tree -------------
    localparam TREE_NODES = lvl_off(SEGS, DEPTH + 1);
    reg [64*TREE_NODES-1:0] tree;   // level l, node i: tree[64*(lvl_off(SEGS,l)+i) +: 64] = {hi, lo}
    generate
        for (i = 0; i < SEGS; i = i + 1) begin : g_unpack
            wire [47:0] p = pc[48*(i*CASCADE_GROUPS + CASCADE_GROUPS - 1) +: 48];
            wire [29:0] hi30 = p[47:18] + {29'd0, p[17]};   // undo the low lane's sign borrow
            always @(posedge clk) begin
                if (ce) begin
                    tree[64*i +: 32]      <= {{14{p[17]}}, p[17:0]};
                    tree[64*i + 32 +: 32] <= {{2{hi30[29]}}, hi30};
                end
            end
        end
        for (l = 1; l <= DEPTH; l = l + 1) begin : g_lvl
            for (i = 0; i < nodes(SEGS, l); i = i + 1) begin : g_node
                localparam A = lvl_off(SEGS, l - 1) + 2 * i;
                localparam Q = lvl_off(SEGS, l) + i;
                always @(posedge clk) begin
                    if (ce) begin
                        if (2 * i + 1 < nodes(SEGS, l - 1)) begin
                            tree[64*Q +: 32]      <= tree[64*A +: 32] + tree[64*(A+1) +: 32];
                            tree[64*Q + 32 +: 32] <= tree[64*A + 32 +: 32] + tree[64*(A+1) + 32 +: 32];
                        end else begin
                            tree[64*Q +: 64] <= tree[64*A +: 64];
                        end
                    end
                end
            end
        end
    endgenerate

    // ---- group accumulator = output register ------------------------------------------
    wire [31:0] red_lo = tree[64*(TREE_NODES-1) +: 32];
    wire [31:0] red_hi = tree[64*(TREE_NODES-1) + 32 +: 32];
    reg  [31:0] acc_lo, acc_hi;
    always @(posedge clk) begin
        if (ce && c_valid[CTRL-1]) begin
            acc_lo <= (c_first[CTRL-1] ? 32'd0 : acc_lo) + red_lo;
            acc_hi <= (c_first[CTRL-1] ? 32'd0 : acc_hi) + red_hi;
        end
    end
    always @(posedge clk) begin
        if (rst) begin
            m_valid <= 1'b0;
        end else if (ce) begin
            m_valid <= c_valid[CTRL-1] && c_last[CTRL-1];
        end
    end
    assign m_lo = acc_lo;
    assign m_hi = acc_hi;
endmodule

`default_nettype wire
