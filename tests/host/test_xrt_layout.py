"""The XRT buffer layout against the compiler's placement (no hardware needed)."""
from __future__ import annotations

import pytest

from llmaccel.host.artifact import load_artifact
from llmaccel.host.backends.xrt_layout import REGION_ALIGN, buffer_layout, layout_for_artifact
from llmaccel.host.errors import SessionError


@pytest.fixture(scope="module")
def art(host_w8):
    return load_artifact(host_w8[1])


def test_every_placed_region_is_in_its_own_bank_at_its_address(art):
    layout = layout_for_artifact(art)
    pl = art.model.placement_dict()
    for r in art.model.regions:
        for ch in range(r.channel0, r.channel0 + r.n_channels):
            hits = [p for p in layout[ch].contents if p.name == r.tensor]
            assert len(hits) == 1, (r.tensor, ch)
            assert hits[0].offset == r.addr and hits[0].size == r.bytes_per_channel
    # nothing else sneaks into a bank, and nothing overlaps
    for bank, buf in layout.items():
        assert buf.tag == f"HBM[{bank}]"
        spans = sorted((p.offset, p.offset + p.size) for p in buf.contents)
        assert all(a_end <= b0 for (_, a_end), (b0, _) in zip(spans, spans[1:])), bank
        assert buf.size == max(e for _, e in spans) <= pl["channel_bytes"]


def test_instructions_and_logits_go_to_each_cores_first_bank_after_its_tensors(art):
    layout = layout_for_artifact(art)
    cpc = art.model.hw.channels_per_core
    words = {}
    for per_core in art.programs.values():
        for c, w in per_core.items():
            words[c] = words.get(c, 0) + len(w)
    for c in range(art.comp.hw.n_cores):
        buf = layout[c * cpc]
        last_region = max(p.offset + p.size for p in buf.contents if p.kind not in ("instructions", "logits"))
        ins = next(p for p in buf.contents if p.name == f"instructions.c{c}")
        lg = next(p for p in buf.contents if p.name == f"logits.c{c}")
        assert ins.size == 4 * words[c] and lg.size == 4 * art.model.slices.vocab_rows[c]
        assert ins.offset >= last_region and ins.offset % REGION_ALIGN == 0
        assert lg.offset >= ins.offset + ins.size and lg.offset % REGION_ALIGN == 0


def test_a_bank_that_overflows_is_one_error():
    placement = {"n_channels": 2, "channel_bytes": 8192, "n_cores": 2,
                 "regions": [{"tensor": "L0.q_proj.c0", "core": 0, "channel0": 0, "n_channels": 1, "addr": 0,
                              "bytes_per_channel": 8000}]}
    with pytest.raises(SessionError, match=r"HBM\[0\]"):
        buffer_layout(placement, {0: 100}, {})


def test_weight_bytes_in_the_banks_are_what_the_engine_decodes(art):
    """Every weight LD of a compiled program, read from the bank images at its channel/address, holds
    exactly the packed rows the functional engine decodes for it."""
    import numpy as np
    from llmaccel.host.backends.xrt_layout import weight_bank_images
    from llmaccel.simulator import isa
    from llmaccel.simulator.functional import ModelWeights
    from llmaccel.simulator.functional.memory import HbmImage
    weights = ModelWeights.from_compressed(art.compressed)
    images = weight_bank_images(art.model, weights)
    mem = HbmImage(art.model, weights)
    n = 0
    lb = art.model.layer_base_lines
    for prog, layer in ((art.model.program("decode", 16, 1, 0), 2), (art.model.program("head"), -1)):
        for st in prog.cores:
            base = lb[layer][st.core] - lb[prog.template_layer][st.core] if layer >= 0 else 0
            for ins, name in zip(isa.decode(st.words), st.names):
                if not isinstance(ins, isa.LD) or ins.kind != "weight_codes":
                    continue
                addr = (ins.src_addr_lines + base) * isa.LINE_BYTES
                nbytes = ins.rows * ins.length_lines * isa.LINE_BYTES
                t, ch = mem.find(ins.channel, addr, nbytes, name)
                rows = mem.weight_rows(t, ch, addr, ins.length_lines, ins.rows, name)
                packed = weights.linears[t.key]
                raw = bytes(images[ins.channel][addr:addr + nbytes])
                per_row = np.frombuffer(raw, np.uint8).reshape(len(rows), t.row_bytes)
                nw = packed.fmt.code_words_per_row
                codes = per_row[:, :4 * nw].copy().view("<u4")
                assert np.array_equal(codes, packed.codes[t.row0 + rows]), name
                g = packed.fmt.groups_per_row
                off = 4 * (nw + packed.fmt.index_words_per_row)
                scales = per_row[:, off:off + 2 * g].copy().view("<f2")
                assert np.array_equal(scales, packed.scales[t.row0 + rows]), name
                n += 1
    assert n > 50
