"""JAX's persistent compilation cache, turned on by ``import probsnn`` (probsnn/_cache.py): a
second process loads what the first compiled; the environment moves or disables it; a user's
own JAX setting is kept; entries are written atomically. The probes run in fresh processes
(a few seconds each: marked slow, run in CI)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

import probsnn
from probsnn import _cache

# Compile a few programs through probsnn and report JAX's cache events (jax.monitoring).
PROBE = """
import json
from jax import monitoring

events = []
monitoring.register_event_listener(lambda event, **kwargs: events.append(event))
import jax
import probsnn as ps
from probsnn import _cache, kernels

spec = ps.Network(3, kernels.raised_cosine(2, 1, 4), dt=1e-3)
params = spec.init_params(jax.random.key(0))
spikes = ps.sample(spec, params, jax.random.key(1), n_steps=50)
float(ps.log_likelihood(spec, params, spikes))
folder = _cache.compilation_cache_dir()
print(json.dumps({
    "dir": None if folder is None else str(folder),
    "requests": events.count("/jax/compilation_cache/compile_requests_use_cache"),
    "hits": events.count("/jax/compilation_cache/cache_hits"),
    "writes": events.count("/jax/compilation_cache/cache_misses"),
}))
"""

_VARIABLES = (_cache.ENV_DIR, _cache.ENV_SWITCH, "JAX_COMPILATION_CACHE_DIR", "XDG_CACHE_HOME")


def probe(tmp_path, script=PROBE, **variables) -> dict:
    """Run ``script`` in a fresh process with the cache variables given (the others unset, and
    the user cache folder moved under ``tmp_path``); return its last line, parsed."""
    env = {key: value for key, value in os.environ.items() if key not in _VARIABLES}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env.update(variables)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def entries(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


@pytest.mark.slow
def test_a_second_process_loads_what_the_first_compiled(tmp_path):
    folder = tmp_path / "compiled"
    first = probe(tmp_path, PROBSNN_CACHE_DIR=str(folder))
    assert first["dir"] == str(folder)
    written = entries(folder)
    assert first["writes"] > 0 and first["writes"] + first["hits"] == first["requests"]
    assert len(written) == first["writes"]  # small programs are cached too
    assert all(name.endswith("-cache") for name in written)  # no temporary file left
    second = probe(tmp_path, PROBSNN_CACHE_DIR=str(folder))
    assert second["hits"] == second["requests"] == first["requests"]
    assert second["writes"] == 0 and entries(folder) == written
    assert not (tmp_path / "xdg").exists()


@pytest.mark.slow
def test_the_default_folder_is_the_user_cache_folder(tmp_path):
    result = probe(tmp_path)
    folder = tmp_path / "xdg" / "probsnn" / "jax"
    assert result["dir"] == str(folder)
    assert len(entries(folder)) == result["writes"] > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "variables",
    [{"PROBSNN_CACHE": "off", "PROBSNN_CACHE_DIR": "{tmp}/compiled"}, {"PROBSNN_CACHE_DIR": ""}],
    ids=["PROBSNN_CACHE=off", "PROBSNN_CACHE_DIR=''"],
)
def test_the_environment_turns_the_cache_off(variables, tmp_path):
    variables = {key: value.format(tmp=tmp_path) for key, value in variables.items()}
    result = probe(tmp_path, **variables)
    assert result["dir"] is None and result["writes"] == 0
    assert not (tmp_path / "compiled").exists() and not (tmp_path / "xdg").exists()


@pytest.mark.slow
def test_a_folder_given_to_jax_by_the_user_is_kept(tmp_path):
    own = tmp_path / "own"
    result = probe(tmp_path, JAX_COMPILATION_CACHE_DIR=str(own))
    assert result["dir"] == str(own)
    assert not (tmp_path / "xdg").exists()
    # and PROBSNN_CACHE_DIR, more specific, wins over it
    result = probe(tmp_path, JAX_COMPILATION_CACHE_DIR=str(own), PROBSNN_CACHE_DIR=str(own / "p"))
    assert result["dir"] == str(own / "p") and result["writes"] > 0


@pytest.mark.slow
def test_an_entry_whose_write_fails_leaves_no_partial_file(tmp_path):
    failing = PROBE.replace(
        "import jax\n",
        "import jax, os\n"
        "def failing(source, target):\n"
        "    raise OSError(28, 'No space left on device')\n"
        "os.replace = failing\n",
        1,
    )
    folder = tmp_path / "compiled"
    result = probe(tmp_path, failing, PROBSNN_CACHE_DIR=str(folder))
    assert result["dir"] == str(folder) and result["writes"] > 0  # JAX tried, and warned
    assert entries(folder) == set()  # neither an entry nor a temporary file


def test_enable_compilation_cache_moves_the_folder_and_checks_its_argument(tmp_path):
    assert probsnn.enable_compilation_cache is _cache.enable_compilation_cache
    with _cache.saved_settings():
        folder = probsnn.enable_compilation_cache(tmp_path / "here")
        assert folder == (tmp_path / "here").absolute() == _cache.compilation_cache_dir()
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0
        probsnn.disable_compilation_cache()
        assert _cache.compilation_cache_dir() is None
    with pytest.raises(TypeError, match="path must be a str or path-like folder, got 3"):
        probsnn.enable_compilation_cache(3)
    with pytest.raises(ValueError, match="path must name a folder, got an empty string"):
        probsnn.enable_compilation_cache(" ")
