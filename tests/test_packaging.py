"""The wheel installs one namespace, probsnn, importable from outside the source tree."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_probsnn_models_and_inference_only(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("probsnn-*.whl")
    top_level = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert "probsnn" in top_level
    assert not {"models", "inference", "tests", "benchmarks"} & top_level
    # every package of the source tree is in the wheel (a package missing from pyproject's
    # list would only work in editable installs)
    packaged = set(zipfile.ZipFile(wheel).namelist())
    for init in ROOT.glob("probsnn/**/__init__.py"):
        assert init.relative_to(ROOT).as_posix() in packaged, init
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    probe = (
        "import probsnn, probsnn.models, probsnn.inference, importlib.util as u;"
        "print(probsnn.__file__); print(probsnn.models.__file__);"
        "print(probsnn.inference.fit_ml.__module__);"
        "print(u.find_spec('models'), u.find_spec('inference'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": ""},
    ).stdout.splitlines()
    assert out[0].startswith(str(target)) and out[1].startswith(str(target / "probsnn" / "models"))
    assert out[2] == "probsnn.inference.likelihood.newton"
    assert out[3] == "None None"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = ".venv/bin/python -m pytest -n 2 --nbmake tests notebooks"
    assert command in readme and command in ci


def test_importing_the_library_loads_neither_pyplot_nor_the_experiments():
    """Plots live in probsnn.plot and experiments in probsnn.experiments, both imported on
    demand: ``import probsnn.inference`` (and so ``import probsnn``) must not load
    matplotlib.pyplot (slow, and it picks a GUI backend), and ``import probsnn`` must not load
    the experiments (a face layer above inference)."""
    probe = (
        "import sys, probsnn;"
        "assert 'probsnn.experiments' not in sys.modules, 'probsnn imports probsnn.experiments';"
        "import probsnn.inference;"
        "loaded = sorted(m for m in sys.modules if m.startswith('matplotlib.pyplot'));"
        "assert not loaded, f'import probsnn.inference loads {loaded}'"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
