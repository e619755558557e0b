"""The one top-level error path of `llmaccel`: no traceback for any input, --json always one object.

Each command line here printed a traceback, exited 0 on input it ignored, or left stdout empty under
--json before issue 11. They run in-process (``main(argv)``) because that is the code path of the
console script; one subprocess test checks the real entry point and its exit status.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmaccel.cli import main


def run_cli(capsys, *argv):
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def one_json(out: str) -> dict:
    """stdout is exactly one JSON object (json.loads refuses trailing text)."""
    obj = json.loads(out)
    assert isinstance(obj, dict)
    return obj


@pytest.mark.parametrize("argv, needle", [
    (["compile", "--json"], "the following arguments are required: --out"),
    (["simulate", "--prefill", "ten", "--json"], "argument --prefill: invalid int value: 'ten'"),
    (["presets", "--kind", "gpus", "--json"], "invalid choice: 'gpus'"),
    (["simulate", "--bogus", "--json"], "unrecognized arguments: --bogus"),
    (["--json"], "the following arguments are required: command"),
    (["rtl", "gen", "--json"], "the following arguments are required: --out"),
])
def test_argparse_errors_are_one_json_object(capsys, argv, needle):
    rc, out, err = run_cli(capsys, *argv)
    obj = one_json(out)
    assert rc == 2 and obj["kind"] == "usage" and needle in obj["error"] and obj["usage"].startswith("usage:")


def test_argparse_error_without_json_is_one_line_and_usage(capsys):
    rc, out, err = run_cli(capsys, "simulate", "--prefill", "ten")
    assert rc == 2 and out == ""
    assert err.splitlines()[0].startswith("llmaccel simulate: error: argument --prefill") and "Traceback" not in err


def test_help_under_json_is_one_object(capsys):
    rc, out, _ = run_cli(capsys, "simulate", "--help", "--json")
    assert rc == 0 and "--prefill" in one_json(out)["help"]


def test_abbreviated_flags_are_refused(capsys):
    # `--pre 4` used to mean --prefill; with abbreviations a new flag could silently change a command's meaning.
    rc, out, _ = run_cli(capsys, "simulate", "--pre", "4", "--json")
    assert rc == 2 and "unrecognized arguments: --pre" in one_json(out)["error"]


def test_max_eval_tokens_one_is_an_error_not_zero_division(capsys, tiny_checkpoint):
    rc, out, _ = run_cli(capsys, "compress", "--model", str(tiny_checkpoint), "--eval", "--recipes", "fp32",
                         "--max-eval-tokens", "1", "--json")
    assert rc == 2 and "--max-eval-tokens: 1 must be >= 2" in one_json(out)["error"]


def test_perplexity_of_too_few_tokens_is_an_error():
    from llmaccel.gpu_baseline.evaluate import perplexity
    from llmaccel.errors import LlmaccelError
    with pytest.raises(LlmaccelError, match="perplexity needs at least 2"):
        perplexity(None, [5])
    with pytest.raises(LlmaccelError, match="max_tokens=0 must be an integer >= 2"):
        perplexity(None, [5, 6, 7], max_tokens=0)  # 0 used to mean "the whole text"


@pytest.mark.parametrize("content, needle", [
    (b"", "is empty"),
    (b"  \n\t\n", "is empty"),
    (bytes(range(256)) * 4, "is not UTF-8 text"),
    (b"caf\xe9 au lait", "is not UTF-8 text (byte 3"),
    (b"text\x00with a NUL", "holds NUL bytes"),
])
def test_bad_eval_text_is_one_error(capsys, tiny_checkpoint, tmp_path, content, needle):
    f = tmp_path / "eval.txt"
    f.write_bytes(content)
    rc, out, _ = run_cli(capsys, "compress", "--model", str(tiny_checkpoint), "--eval", "--recipes", "fp32",
                         "--eval-text", str(f), "--json")
    err = one_json(out)["error"]
    assert rc == 2 and err.startswith("--eval-text") and needle in err


def test_eval_text_that_is_a_directory_is_one_error(capsys, tiny_checkpoint, tmp_path):
    rc, out, _ = run_cli(capsys, "compress", "--model", str(tiny_checkpoint), "--eval", "--recipes", "fp32",
                         "--eval-text", str(tmp_path), "--json")
    assert rc == 2 and "is not a file" in one_json(out)["error"]


def test_empty_recipe_list_is_an_error_not_the_whole_table(capsys, tiny_checkpoint):
    # `--recipes ""` was falsy and evaluated all ten recipes (minutes) with exit 0.
    rc, out, _ = run_cli(capsys, "compress", "--model", str(tiny_checkpoint), "--eval", "--recipes", "", "--json")
    assert rc == 2 and "--recipes: an empty value" in one_json(out)["error"]
    rc, out, _ = run_cli(capsys, "compress", "--model", str(tiny_checkpoint), "--eval", "--recipes", "fp32,,w8",
                         "--json")
    assert rc == 2 and "has an empty name" in one_json(out)["error"]


def test_non_utf8_prompt_is_one_error(capsys):
    prompt = b"caf\xe9".decode("utf-8", "surrogateescape")  # how Python hands a Latin-1 argv to main
    rc, out, _ = run_cli(capsys, "run", "--prompt", prompt, "--json")
    assert rc == 2 and "is not valid UTF-8 text" in one_json(out)["error"]


@pytest.mark.parametrize("flag", ["--trace", "--plot"])
def test_output_file_under_a_file_or_onto_a_directory_is_one_error(capsys, tmp_path, flag):
    afile = tmp_path / "afile"
    afile.write_text("x")
    rc, out, _ = run_cli(capsys, "simulate", "--model", "tiny", "--max-len", "128", "--prefill", "8",
                         "--decode", "2", flag, str(afile / "x.out"), "--json")
    assert rc == 2 and "exists and is not a directory" in one_json(out)["error"]
    rc, out, _ = run_cli(capsys, "simulate", "--model", "tiny", "--max-len", "128", "--prefill", "8",
                         "--decode", "2", flag, str(tmp_path), "--json")
    assert rc == 2 and "is a directory; give a file name" in one_json(out)["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no temporary file left behind


def test_plot_of_compress_eval_under_a_file_fails_before_any_work(capsys, tiny_checkpoint, tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("x")
    evaluated = []   # a spy: the evaluation (minutes on a real model) must not start
    monkeypatch.setattr("llmaccel.commands.compress.evaluate_recipes", lambda *a, **k: evaluated.append(a))
    rc, out, _ = run_cli(capsys, "compress", "--model", str(tiny_checkpoint), "--eval", "--recipes", "fp32",
                         "--plot", str(tmp_path / "afile" / "p.png"), "--json")
    err = one_json(out)["error"]
    assert rc == 2 and err.startswith("--plot") and "exists and is not a directory" in err
    assert evaluated == []


def test_io_error_on_a_users_path_is_one_line(capsys, tmp_path):
    # rtl gen --out onto an existing file: NotADirectoryError from deep inside, once a traceback.
    (tmp_path / "afile").write_text("x")
    rc, out, err = run_cli(capsys, "rtl", "gen", "--out", str(tmp_path / "afile"))
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and "afile" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, needle", [
    (["compress", "--plot", "p.png"], "--plot applies only with --eval"),
    (["compress", "--max-eval-tokens", "64"], "--max-eval-tokens applies only with --eval"),
    (["compress", "--eval", "--recipe", "w8"], "--recipe does not apply with --eval"),
    (["compress", "--eval", "--out", "o"], "--out does not apply with --eval"),
    (["compress", "--recipe", "w8", "--calibration-text", "c.txt"], "--calibration-text does not apply"),
    (["run", "--prompt", "x", "--xclbin", "a.xclbin"], "--xclbin applies only with --backend xrt"),
    (["run", "--prompt", "x", "--top-k", "5"], "--top-k does not apply to greedy decoding"),
    (["run", "--prompt", "x", "--compressed", "c"], "--compressed applies only with --artifact"),
    (["run", "--prompt", "x", "--artifact", "a", "--recipe", "w8"], "--recipe does not apply with --artifact"),
    (["presets", "--show", "tiny", "--kind", "models"], "--kind does not apply with --show"),
    (["hls", "emit", "--kernel", "list", "--force"], "--force does not apply to '--kernel list'"),
    (["hls", "run", "proj", "--gxx", "--steps", "csim"], "--steps does not apply with --gxx"),
    (["rtl", "gen", "--out", "o", "--bits", "3"], "--bits does not apply to --unit chain"),
    (["rtl", "gen", "--unit", "decoder", "--out", "o", "--n-chains", "3"],
     "--n-chains does not apply to --unit decoder"),
])
def test_flag_that_does_not_apply_is_an_error(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)  # nothing may be written; if something were, it lands in tmp_path
    rc, out, _ = run_cli(capsys, *argv, "--json")
    assert rc == 2 and needle in one_json(out)["error"]
    assert list(tmp_path.iterdir()) == []


def test_every_inapplicable_flag_is_named_at_once(capsys):
    rc, out, _ = run_cli(capsys, "run", "--prompt", "x", "--top-k", "5", "--seed", "1", "--json")
    err = one_json(out)["error"]
    assert rc == 2 and "--top-k" in err and "--seed" in err


def test_compile_recipe_with_a_compressed_model_is_an_error(capsys, tmp_path):
    art = tmp_path / "cm"
    art.mkdir()
    (art / "manifest.json").write_text("{}")
    rc, out, _ = run_cli(capsys, "compile", "--model", str(art), "--recipe", "w8", "--out", str(tmp_path / "o"),
                         "--json")
    assert rc == 2 and "--recipe does not apply to a compressed-model artifact" in one_json(out)["error"]


# ----- the bug path: an exception nobody anticipated ------------------------------------------------

def _command(name):
    from llmaccel.cli import _command_modules
    return next(m for m in _command_modules() if m.NAME == name)


def test_unexpected_exception_is_one_line_naming_the_bug_and_where(capsys, monkeypatch):
    def broken(args):
        return {"x": 1 / 0}
    monkeypatch.setattr(_command("presets"), "run", broken)
    rc, out, err = run_cli(capsys, "presets")
    assert rc == 3 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "bug" in lines[0] and "ZeroDivisionError" in lines[0]
    assert "tests/cli/test_error_path.py:" in lines[0]  # file:line of the innermost frame in the repository

    rc, out, err = run_cli(capsys, "presets", "--json")
    obj = one_json(out)
    assert rc == 3 and obj["kind"] == "bug" and obj["exception"] == "ZeroDivisionError"
    assert obj["where"].startswith("tests/cli/test_error_path.py:")


def test_interrupt_is_one_line(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(_command("presets"), "run", interrupted)
    rc, out, err = run_cli(capsys, "presets", "--json")
    assert rc == 130 and one_json(out)["kind"] == "interrupted"


def test_stray_prints_do_not_break_json(capsys, monkeypatch):
    def chatty(args):
        print("progress from a library")
        return {"value": float("nan"), "big": float("inf")}
    monkeypatch.setattr(_command("presets"), "run", chatty)
    rc, out, err = run_cli(capsys, "presets", "--json")
    assert rc == 0 and one_json(out) == {"value": "nan", "big": "inf"}  # strict JSON has no NaN literal
    assert "progress from a library" in err


def test_console_entry_point_exit_status_and_single_object(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "llmaccel", "simulate", "--prefill", "x", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert one_json(proc.stdout)["kind"] == "usage"


# ----- found by the fuzz suite (tests/fuzz) ---------------------------------------------------------

@pytest.mark.parametrize("argv, needle", [
    (["run", "--prompt", "hi", "--artifact", ""], "--artifact: an empty value"),  # ran the bundled model, exit 0
    (["presets", "--show", ""], "--show: an empty value"),                         # listed everything, exit 0
    (["hls", "report", ""], "path: an empty value"),                               # searched the current directory
    (["compress", "--eval", "--recipes", "fp32", "--eval-text", ""], "--eval-text: an empty value"),
])
def test_empty_value_is_an_error_not_absent(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run_cli(capsys, *argv, "--json")
    assert rc == 2 and needle in one_json(out)["error"]


def test_nm_zero_zero_is_not_dense(capsys, tmp_path):
    rc, out, _ = run_cli(capsys, "rtl", "gen", "--nm", "0:0", "--out", str(tmp_path / "g"), "--json")
    assert rc == 2 and "0 < N <= M" in one_json(out)["error"] and not (tmp_path / "g").exists()


def test_late_names_are_checked_before_the_long_work(capsys):
    # demo used to train-evaluate-compress-compile for a minute before finding a typo in --project-model
    import time
    t0 = time.perf_counter()
    rc, out, _ = run_cli(capsys, "demo", "--project-model", "llama2-7", "--json")
    assert rc == 2 and "unknown model preset 'llama2-7'" in one_json(out)["error"]
    assert time.perf_counter() - t0 < 20  # the error comes from the first line of run(), not after the tour


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc (unwritable even for root)")
@pytest.mark.parametrize("argv", [
    ["simulate", "--model", "tiny", "--max-len", "128", "--prefill", "8", "--decode", "2", "--trace",
     "/proc/llmaccel-test.json"],
    ["simulate", "--model", "tiny", "--max-len", "128", "--prefill", "8", "--decode", "2", "--plot",
     "/proc/llmaccel-test.png"],
    ["rtl", "gen", "--out", "/proc/llmaccel-test"],
])
def test_unwritable_output_is_one_line(capsys, argv):
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and "/proc/llmaccel-test" in err


def test_os_error_anywhere_is_one_line_exit_2(capsys, monkeypatch):
    def denied(args):
        raise PermissionError(13, "Permission denied", "/data/results.json")
    monkeypatch.setattr(_command("presets"), "run", denied)
    rc, out, err = run_cli(capsys, "presets", "--json")
    obj = one_json(out)
    assert rc == 2 and obj["kind"] == "io" and obj["error"] == "cannot use '/data/results.json': Permission denied"


@pytest.mark.parametrize("body, needle", [(b"[1, 2]", "holds a JSON list"), (b"\xff\xfe{", "not UTF-8")])
def test_manifest_that_is_a_list_or_not_utf8_is_one_error(capsys, tmp_path, body, needle):
    (tmp_path / "manifest.json").write_bytes(body)
    rc, out, _ = run_cli(capsys, "run", "--artifact", str(tmp_path), "--prompt", "hi", "--json")
    assert rc == 2 and needle in one_json(out)["error"]


@pytest.mark.parametrize("argv", [["demo", "--max-new-tokens", "9" * 30], ["run", "--prompt", "hi", "--max-new-tokens",
                                                                          "9" * 30]])
def test_too_many_new_tokens_fail_before_the_long_work(capsys, argv):
    # found by benchmarks/fuzz.py: both ran for minutes (evaluation, compression) before finding it
    import time
    t0 = time.perf_counter()
    rc, out, _ = run_cli(capsys, *argv, "--json")
    assert rc == 2 and "--max-new-tokens" in one_json(out)["error"] and "512 positions" in one_json(out)["error"]
    assert time.perf_counter() - t0 < 20


def test_sys_exit_inside_a_command_is_the_bug_path(capsys, monkeypatch):
    def exits(args):
        raise SystemExit(1)  # what a library calling sys.exit() does
    monkeypatch.setattr(_command("presets"), "run", exits)
    rc, out, _ = run_cli(capsys, "presets", "--json")
    assert rc == 3 and one_json(out)["exception"] == "SystemExit"


def test_every_problem_of_a_spec_file_is_in_the_json_error(capsys, tmp_path):
    (tmp_path / "r.yaml").write_text("name: r\nattn: {bits: 4, group_size: '128'}\nmlp: {bits: 4}\n"
                                     "calibration_tokens: 1.5\n")
    rc, out, _ = run_cli(capsys, "simulate", "--model", "tiny", "--recipe", str(tmp_path / "r.yaml"), "--json")
    obj = one_json(out)
    assert rc == 2 and "2 problems" in obj["error"] and len(obj["problems"]) == 2
