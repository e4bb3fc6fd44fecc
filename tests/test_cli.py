"""The command line (probsnn/cli.py): every argument and the output folder checked before any
work, one-line errors with exit status 2, ``demo`` for every network size, cache options."""

import os
import re
import subprocess
import sys

import pytest

import probsnn
import probsnn as ps
import probsnn.compare
from probsnn import _cache
from probsnn.cli import main


@pytest.fixture
def no_work(monkeypatch):
    """Sampling or comparing fails the test: errors must come before any work."""

    def work(*args, **kwargs):
        raise AssertionError("the command started working before refusing its arguments")

    monkeypatch.setattr(probsnn, "sample", work)
    monkeypatch.setattr(probsnn.compare, "compare", work)


def refused(capsys, argv) -> str:
    """Run ``main(argv)``, expect exit status 2; return its one error line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("probsnn: error: "), err
    assert err.startswith(f"usage: probsnn {argv[0]}") or "unrecognized" in err, err
    return lines[0]


BAD_DEMO = [
    (["--dt", "0"], r"argument --dt: value must be finite and > 0, got 0\.0"),
    (["--dt", "-0.001"], r"argument --dt: value must be finite and > 0"),
    (["--dt", "nan"], r"argument --dt: value must be finite and > 0, got nan"),
    (["--dt", "2ms"], r"argument --dt: expected a number > 0, got '2ms'"),
    (["--rate", "0"], r"argument --rate: value must be finite and > 0"),
    (["--rate", "inf"], r"argument --rate: value must be finite and > 0, got inf"),
    (["--rate", "600"], r"rate \* dt must be < 1, got rate=600\.0 with dt=0\.002"),
    (["--bins", "0"], r"argument --bins: value must be >= 1, got 0"),
    (["--bins", "1.5"], r"argument --bins: expected an integer >= 1, got '1\.5'"),
    (["--trials", "0"], r"argument --trials: value must be >= 1, got 0"),
    (["--neurons", "0"], r"argument --neurons: value must be >= 1, got 0"),
    (["--neurons", "three"], r"argument --neurons: expected an integer >= 1, got 'three'"),
    (["--seed", "-1"], r"argument --seed: value must be >= 0, got -1"),
    (["--bins", "10000000", "--neurons", "100000"], r"the sampled spikes would hold"),
    (["--out", ""], r"argument --out: expected a folder, got an empty string"),
    (["--jax-cache", ""], r"argument --jax-cache: expected a folder"),
    (["--jax-cache", "somewhere", "--no-jax-cache"], r"not allowed with argument --jax-cache"),
    (["--neurns", "3"], r"unrecognized arguments: --neurns"),
]

BAD_COMPARE = [
    (["--task", "digit"], r"unknown task\(s\) \['digit'\]; valid tasks: \[.*'digits'"),
    (["--criteria", "stpd"], r"unknown criterion\(s\) \['stpd'\]; valid criteria: "),
    (["--task", "pattern", "--criteria", "ep"], r"'ep' applies to none of the tasks"),
    (["--seeds", "0"], r"argument --seeds: value must be >= 1, got 0"),
    (["--seed", "-2"], r"argument --seed: value must be >= 0, got -2"),
    (["--workers", "0"], r"argument --workers: value must be >= 1, got 0"),
    (["--workers", "two"], r"argument --workers: expected an integer >= 1, got 'two'"),
    (["--devices", "0"], r"argument --devices: value must be >= 1, got 0"),
    (["--devices", "2"], r"devices must be between 1 and the 1 devices there are, got 2"),
    (["--devices", "1", "--workers", "2"], r"devices and workers > 1 are exclusive"),
    (["--out", ""], r"argument --out: expected a folder"),
]


@pytest.mark.parametrize(
    ("command", "arguments", "message"),
    [("demo", *case) for case in BAD_DEMO] + [("compare", *case) for case in BAD_COMPARE],
    ids=[f"demo {' '.join(c[0])}" for c in BAD_DEMO]
    + [f"compare {' '.join(c[0])}" for c in BAD_COMPARE],
)
def test_a_bad_argument_is_refused_in_one_line_before_any_work(
    command, arguments, message, tmp_path, capsys, no_work
):
    out = tmp_path / "report"
    argv = [command, "--out", str(out), *arguments]
    line = refused(capsys, argv)
    assert re.search(message, line), line
    assert not out.exists()  # the output folder is not even created


@pytest.mark.parametrize("command", ["demo", "compare"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(
    command, tmp_path, capsys, no_work
):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    line = refused(capsys, [command, "--out", str(a_file)])
    assert f"argument --out: '{a_file}' is a file, not a folder" in line
    line = refused(capsys, [command, "--out", str(a_file / "report")])
    assert f"argument --out: cannot write to the folder '{a_file / 'report'}'" in line
    assert "Not a directory" in line
    line = refused(capsys, [command, "--jax-cache", str(a_file)])
    assert f"argument --jax-cache: '{a_file}' is a file, not a folder" in line
    new = tmp_path / "new" / "report"
    if command == "compare":  # a folder that does not exist yet is created (then work starts)
        with pytest.raises(AssertionError, match="started working"):
            main([command, "--out", str(new)])
        assert new.is_dir() and not list(new.iterdir())  # the write probe cleaned up


@pytest.mark.parametrize("n_neurons", [1, 3])
def test_demo_runs_for_small_networks(n_neurons, tmp_path, capsys):
    argv = ["--neurons", str(n_neurons), "--bins", "400", "--trials", "1", "--out", str(tmp_path)]
    assert main(["demo", *argv]) == 0
    printed = capsys.readouterr().out
    assert "kernel recovery:" in printed
    if n_neurons == 1:
        assert "coupling r = n/a (no coupling in a 1-neuron network)" in printed
    assert (tmp_path / "demo.png").stat().st_size > 1000
    saved = ps.io.load(tmp_path / "demo_fit.npz")  # the fitted model it reports
    assert saved.spec.n_neurons == n_neurons and saved.metadata["command"] == "demo"
    assert saved.fit.info.n_iterations >= 1


def test_demo_whose_sample_cannot_be_fitted_ends_in_one_line(tmp_path, capsys):
    line = refused(
        capsys, ["demo", "--neurons", "1", "--bins", "3", "--trials", "1", "--out", str(tmp_path)]
    )
    assert "the ML fit cannot use the sampled spikes: spikes of neurons [0] are all 0" in line
    assert "(sample more with --bins or --trials, or raise --rate)" in line


class _Report:
    cells = ()

    def table(self):
        return "table"

    def setup(self):
        return "setup"

    def write(self):
        return {}


def test_jax_cache_options_hold_for_one_command_and_reach_worker_processes(
    tmp_path, monkeypatch, capsys
):
    seen = []

    def fake_compare(*args, **kwargs):
        seen.append(
            (
                _cache.compilation_cache_dir(),
                os.environ.get(_cache.ENV_DIR),
                os.environ.get(_cache.ENV_SWITCH),
            )
        )
        return _Report()

    monkeypatch.setattr(probsnn.compare, "compare", fake_compare)
    before = (_cache.compilation_cache_dir(), os.environ.get(_cache.ENV_DIR))
    base = ["compare", "--task", "digits", "--out", str(tmp_path / "out")]
    folder = tmp_path / "compiled"
    assert main([*base, "--jax-cache", str(folder)]) == 0
    assert seen[-1] == (folder, str(folder), None)
    assert (_cache.compilation_cache_dir(), os.environ.get(_cache.ENV_DIR)) == before
    assert main([*base, "--no-jax-cache"]) == 0
    assert seen[-1][0] is None and seen[-1][2] == "off"
    assert (_cache.compilation_cache_dir(), os.environ.get(_cache.ENV_DIR)) == before


def test_an_interrupted_comparison_says_how_to_resume(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(probsnn.compare, "compare", interrupted)
    assert main(["compare", "--task", "digits", "--out", str(tmp_path)]) == 130
    assert "interrupted (finished cells are cached: run it again to resume)" in (
        capsys.readouterr().err
    )


@pytest.mark.slow
def test_errors_reach_the_terminal_as_one_line_without_a_traceback(tmp_path):
    env = {**os.environ, _cache.ENV_SWITCH: "off"}
    for argv, message in (
        (["demo", "--rate", "600", "--out", str(tmp_path)], "rate * dt must be < 1"),
        (["compare", "--criteria", "stpd", "--out", str(tmp_path)], "unknown criterion(s)"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "probsnn.cli", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("probsnn: error: ") and message in last, done.stderr
