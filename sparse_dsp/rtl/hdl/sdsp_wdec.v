// Mixed-precision weight decoder: packed rows (sparse_dsp/packed_format.py) -> chain beats.
//
// Three input streams per layer, row after row:
//   s_code : the row's code words (32 bit, LSB first; BITS-bit codes straddle words; the
//            row is padded to a whole word),
//   s_idx  : the row's N:M index words (log2(M) bits per kept weight; unused when dense),
//   s_meta : one {zero[7:0], scale_fp16[15:0]} per (row, group) (zero ignored when SYM=1,
//            which uses the implicit 2**(BITS-1)).
// Each bit stream lands in a shift buffer; a beat (CHAIN_LEN weights code - zero, their
// in-block indices, the group's scale, first/last flags) fires into the output register
// when the buffers hold its bits, the group's meta is present and the output is free. A
// row's last beat also drops the row's pad bits. Cycle model: sparse_dsp/weight_decoder.py.
`default_nettype none

module sdsp_wdec #(
    parameter BITS = 4,          // 2, 3, 4 or 8
    parameter N = 1,             // kept per block (1 with M = 1: dense)
    parameter M = 1,
    parameter CHAIN_LEN = 8,     // weights per beat
    parameter K = 256,           // dense row length
    parameter GROUP = 128,       // quantization group (dense columns)
    parameter SYM = 1            // 1: symmetric codes (implicit zero)
) (
    input  wire                   clk,
    input  wire                   rst,
    input  wire                   s_code_valid,
    output wire                   s_code_ready,
    input  wire [31:0]            s_code_data,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire                   s_idx_valid,     // unused when dense
    input  wire [31:0]            s_idx_data,
    input  wire [23:0]            s_meta_data,     // zero field unused when SYM = 1
    /* verilator lint_on UNUSEDSIGNAL */
    output wire                   s_idx_ready,
    input  wire                   s_meta_valid,
    output wire                   s_meta_ready,
    output reg                    m_valid,
    input  wire                   m_ready,
    output reg  [8*CHAIN_LEN-1:0] m_w,
    output reg  [IBW*CHAIN_LEN-1:0] m_idx,
    output reg  [15:0]            m_scale,
    output reg                    m_first,
    output reg                    m_last,
    output reg                    m_row_last
);

    localparam integer IB = (M > 1) ? $clog2(M) : 0;
    localparam IBW    = (IB > 0) ? IB : 1;
    localparam integer KPR    = K * N / M;                 // kept weights per row
    localparam integer KPG    = GROUP * N / M;             // kept weights per group
    localparam integer BPG    = KPG / CHAIN_LEN;           // beats per group
    localparam integer GPR    = K / GROUP;                 // groups per row
    localparam integer NEED_C = BITS * CHAIN_LEN;
    localparam integer NEED_I = IB * CHAIN_LEN;
    localparam integer PAD_C  = ((KPR * BITS + 31) / 32) * 32 - KPR * BITS;
    localparam integer PAD_I  = ((KPR * IB + 31) / 32) * 32 - KPR * IB;
    localparam integer CBW    = 32 * ((NEED_C + 31) / 32 + 2);
    localparam integer IBUFW  = 32 * (((NEED_I > 0 ? NEED_I : 1) + 31) / 32 + 2);
    localparam CCW    = $clog2(CBW + 1);
    localparam ICW    = $clog2(IBUFW + 1);
    localparam BCW    = (BPG > 1) ? $clog2(BPG) : 1;
    localparam GCW    = (GPR > 1) ? $clog2(GPR) : 1;
    // integer copies; used below as sized part-selects (X[W-1:0]) so widths are explicit
    localparam integer BPG_M1 = BPG - 1;
    localparam integer GPR_M1 = GPR - 1;
    localparam integer C_LAST = NEED_C + PAD_C;
    localparam integer C_ROOM = CBW - 32;
    localparam integer I_LAST = NEED_I + PAD_I;
    localparam integer I_ROOM = IBUFW - 32;
    localparam integer WORD   = 32;

    reg [CBW-1:0]   cbuf;
    reg [CCW-1:0]   ccnt;
    reg [BCW-1:0]   bcnt;
    reg [GCW-1:0]   gcnt;
    reg             meta_v;
    reg [7:0]       meta_zero;
    reg [15:0]      meta_scale;

    wire glast = (bcnt == BPG_M1[BCW-1:0]);
    wire rlast = glast && (gcnt == GPR_M1[GCW-1:0]);
    wire idx_have;
    wire have  = (ccnt >= NEED_C[CCW-1:0]) && idx_have && meta_v;
    wire fire  = have && (!m_valid || m_ready);

    // ---- code bit buffer ----------------------------------------------------------------
    assign s_code_ready = (ccnt <= C_ROOM[CCW-1:0]);
    wire ctake = s_code_valid && s_code_ready;
    wire [CCW-1:0] cuse = fire ? (rlast ? C_LAST[CCW-1:0] : NEED_C[CCW-1:0]) : {CCW{1'b0}};
    wire [CCW-1:0] crem = ccnt - cuse;
    wire [CBW-1:0] cword = {{(CBW-32){1'b0}}, s_code_data};
    always @(posedge clk) begin
        if (rst) begin
            cbuf <= {CBW{1'b0}};
            ccnt <= {CCW{1'b0}};
        end else begin
            cbuf <= (cbuf >> cuse) | (ctake ? (cword << crem) : {CBW{1'b0}});
            ccnt <= crem + (ctake ? WORD[CCW-1:0] : {CCW{1'b0}});
        end
    end

    // ---- index bit buffer (N:M only) -----------------------------------------------------
    wire [IBW*CHAIN_LEN-1:0] idx_bits;
    generate
        if (IB > 0) begin : g_idx
            reg [IBUFW-1:0] ibuf;
            reg [ICW-1:0]   icnt;
            assign s_idx_ready = (icnt <= I_ROOM[ICW-1:0]);
            wire itake = s_idx_valid && s_idx_ready;
            wire [ICW-1:0] iuse = fire ? (rlast ? I_LAST[ICW-1:0] : NEED_I[ICW-1:0]) : {ICW{1'b0}};
            wire [ICW-1:0] irem = icnt - iuse;
            wire [IBUFW-1:0] iword = {{(IBUFW-32){1'b0}}, s_idx_data};
            always @(posedge clk) begin
                if (rst) begin
                    ibuf <= {IBUFW{1'b0}};
                    icnt <= {ICW{1'b0}};
                end else begin
                    ibuf <= (ibuf >> iuse) | (itake ? (iword << irem) : {IBUFW{1'b0}});
                    icnt <= irem + (itake ? WORD[ICW-1:0] : {ICW{1'b0}});
                end
            end
            assign idx_have = (icnt >= NEED_I[ICW-1:0]);
            assign idx_bits = ibuf[NEED_I-1:0];
        end else begin : g_dense
            assign s_idx_ready = 1'b0;
            assign idx_have = 1'b1;
            assign idx_bits = {(IBW*CHAIN_LEN){1'b0}};
        end
    endgenerate

    // ---- group meta -----------------------------------------------------------------------
    assign s_meta_ready = !meta_v || (fire && glast);
    wire mtake = s_meta_valid && s_meta_ready;
    always @(posedge clk) begin
        if (rst) begin
            meta_v <= 1'b0;
        end else if (mtake) begin
            meta_v <= 1'b1;
        end else if (fire && glast) begin
            meta_v <= 1'b0;
        end
    end
    always @(posedge clk) begin
        if (mtake) begin
            meta_zero  <= s_meta_data[23:16];
            meta_scale <= s_meta_data[15:0];
        end
    end
    wire [7:0] zero = (SYM != 0) ? (8'd1 << (BITS - 1)) : meta_zero;

    // ---- decode: d = code - zero (fits INT8 for every legal format) ------------------------
    wire [8*CHAIN_LEN-1:0] dec;
    genvar j;
    generate
        for (j = 0; j < CHAIN_LEN; j = j + 1) begin : g_dec
            wire [7:0] code = {{(8-BITS){1'b0}}, cbuf[BITS*j +: BITS]};
            assign dec[8*j +: 8] = code - zero;
        end
    endgenerate

    // ---- beat counters and output register ---------------------------------------------------
    always @(posedge clk) begin
        if (rst) begin
            bcnt <= {BCW{1'b0}};
            gcnt <= {GCW{1'b0}};
            m_valid <= 1'b0;
        end else begin
            if (fire) begin
                bcnt <= glast ? {BCW{1'b0}} : bcnt + 1'b1;
                if (glast) gcnt <= rlast ? {GCW{1'b0}} : gcnt + 1'b1;
                m_valid <= 1'b1;
            end else if (m_ready) begin
                m_valid <= 1'b0;
            end
        end
    end
    always @(posedge clk) begin
        if (fire) begin
            m_w        <= dec;
            m_idx      <= idx_bits;
            m_scale    <= meta_scale;
            m_first    <= (bcnt == {BCW{1'b0}});
            m_last     <= glast;
            m_row_last <= rlast;
        end
    end
endmodule

`default_nettype wire
