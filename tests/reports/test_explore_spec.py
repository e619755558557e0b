"""Exploration specs: knobs come from the design dataclass; each bad input is one error naming its field."""
from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from llmaccel.cli import main
from llmaccel.reports.explore import load_spec
from llmaccel.reports.explore.knobs import KnobError, design_knobs
from llmaccel.reports.explore.points import enumerate_points
from llmaccel.simulator.design import AcceleratorDesign, load_design
from llmaccel.errors import LlmaccelError
from tests.reports._specs import tiny_spec


def test_every_design_field_is_a_knob():
    """Walk the dataclass independently: every leaf field of the design (and of each buffer) is a knob."""
    d = load_design("flightllm-u280")
    knobs = design_knobs(d)
    expected = set()
    for f in dataclasses.fields(AcceleratorDesign):
        if f.name in ("name", "description", "notes"):
            continue
        if f.name in ("hls_reports", "reported"):     # measured inputs, not architecture: never swept
            assert f.name not in knobs
            continue
        v = getattr(d, f.name)
        if dataclasses.is_dataclass(v):
            expected |= {f"{f.name}.{g.name}" for g in dataclasses.fields(v)}
        elif f.name == "buffers":
            expected |= {f"buffers.{b.name}.{g.name}" for b in v for g in dataclasses.fields(b) if g.name != "name"}
        else:
            expected.add(f.name)
    dotted = {k for k, v in knobs.items() if k == v.dotted}
    assert dotted == expected
    # unique leaves are accepted by their short name
    assert knobs["chains_per_core"].dotted == "matrix_engine.chains_per_core"
    assert knobs["lanes"].dotted == "sfu.lanes"
    assert "size_bytes" not in knobs            # every buffer has one: only the dotted form is unambiguous


def test_knob_values_reach_the_design():
    spec = load_spec(tiny_spec(knobs={"chains_per_core": [4, 8], "buffers.weight.size_bytes": [65536, 32768]}))
    pts = enumerate_points(spec)
    got = {(p.design["matrix_engine"]["chains_per_core"],
            next(b["size_bytes"] for b in p.design["buffers"] if b["name"] == "weight")) for p in pts}
    assert got == {(4, 65536), (4, 32768), (8, 65536), (8, 32768)}
    assert len({p.hash for p in pts}) == 4


def test_range_is_inclusive_and_typed():
    spec = load_spec(tiny_spec(knobs={"clock_MHz": {"start": 150, "stop": 250, "step": 50},
                                      "cores": {"start": 1, "stop": 2, "step": 1}}))
    pts = enumerate_points(spec)
    assert sorted({p.design["clock_MHz"] for p in pts}) == [150.0, 200.0, 250.0]
    assert sorted({p.design["cores"] for p in pts}) == [1, 2]


def test_invalid_combination_is_a_row_not_a_crash():
    # 8 HBM channels are not a multiple of 3 cores: the design rejects it, the sweep records why
    pts = enumerate_points(load_spec(tiny_spec(knobs={"cores": [2, 3]})))
    bad = [p for p in pts if p.invalid]
    assert len(bad) == 1 and "multiple of cores" in bad[0].invalid


def test_constraints_exclude_points_and_are_not_code():
    pts = enumerate_points(load_spec(tiny_spec(constraints=["matrix_dsps <= 64"])))
    assert {p.design["cores"] * p.design["matrix_engine"]["chains_per_core"] for p in pts if not p.excluded} == {4, 8}
    with pytest.raises(LlmaccelError, match=r"constraints\[0\].*Call is not allowed"):
        load_spec(tiny_spec(constraints=["__import__('os').getcwd() == 1"]))
    with pytest.raises(LlmaccelError, match=r"constraints\[0\].*'no_such_field' is not a design field"):
        load_spec(tiny_spec(constraints=["no_such_field > 1"]))


BAD_SPECS = [
    # (what, spec overrides, field named in the error)
    ("unknown knob", {"knobs": {"chain_count": [1, 2]}}, r"knobs\.chain_count: unknown knob 'chain_count'.*chains_per_core"),
    ("range of the wrong type (float bounds, int knob)", {"knobs": {"cores": {"start": 1.5, "stop": 3, "step": 1}}},
     r"knobs\.cores: knob 'cores' is an integer; range start/stop/step must be integers"),
    ("range of the wrong type (string bound)", {"knobs": {"clock_MHz": {"start": "fast", "stop": 300, "step": 10}}},
     r"knobs\.clock_MHz: a range is \{start, stop, step\} numbers; field 'start' must be a number"),
    ("range on a list-typed knob", {"knobs": {"supported_nm": {"start": 1, "stop": 2, "step": 1}}},
     r"knobs\.supported_nm: a range \{start, stop, step\} needs a numeric knob"),
    ("knob value of the wrong type", {"knobs": {"cores": ["two"]}}, r"knobs\.cores\[0\]: knob 'cores' must be an integer"),
    ("empty sweep (knob)", {"knobs": {"cores": []}}, r"knobs\.cores: empty list"),
    ("empty sweep (recipes)", {"recipes": []}, r"field 'recipes' is empty"),
    ("unknown top-level field", {"knob": {}}, r"field 'knob': unknown field; allowed fields: name, designs"),
]


@pytest.mark.parametrize("what,over,match", BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_bad_spec_is_one_error_naming_the_field(what, over, match):
    with pytest.raises(LlmaccelError, match=match):
        load_spec(tiny_spec(**over))


def _cli(tmp_path, capsys, spec: dict, *extra) -> tuple[int, str]:
    import yaml
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump(spec))
    rc = main(["explore", str(p), "--quiet", "--out", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err
    return rc, err


def test_cli_bad_spec_exits_2_with_one_line(tmp_path, capsys):
    rc, err = _cli(tmp_path, capsys, tiny_spec(knobs={"chain_count": [1]}))
    assert rc == 2
    assert err.count("\n") == 1 and "knobs.chain_count" in err and "Traceback" not in err


def test_cli_unreachable_ray_address(tmp_path, capsys):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                          # nothing listens on this port now
    rc, err = _cli(tmp_path, capsys, tiny_spec(), "--address", f"127.0.0.1:{port}")
    assert rc == 2
    assert f"--address '127.0.0.1:{port}': no Ray cluster reachable" in err and err.count("\n") == 1


@pytest.mark.parametrize("content", [b"my thesis notes\n", b""], ids=["text file", "empty file"])
def test_cli_store_that_is_not_ours_is_left_untouched(tmp_path, capsys, content):
    store = tmp_path / "results.sqlite"
    store.write_bytes(content)
    rc, err = _cli(tmp_path, capsys, tiny_spec(), "--store", str(store))
    assert rc == 2 and f"store '{store}' exists and is not an llmaccel exploration store" in err
    assert store.read_bytes() == content


def test_cli_foreign_sqlite_store_is_left_untouched(tmp_path, capsys):
    store = tmp_path / "theirs.db"
    con = sqlite3.connect(store)
    con.execute("CREATE TABLE accounts (id INTEGER, balance REAL)")
    con.commit()
    con.close()
    before = store.read_bytes()
    rc, err = _cli(tmp_path, capsys, tiny_spec(), "--store", str(store))
    assert rc == 2 and "without our 'meta' table" in err
    assert store.read_bytes() == before
