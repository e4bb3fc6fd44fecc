"""JAX's persistent compilation cache, on by default for probsnn.

Much of a first call in a fresh process is XLA compilation. JAX can keep compiled programs on
disk and load them in the next process instead of compiling again (its *persistent compilation
cache*); ``import probsnn`` turns it on, so the command line, notebooks and scripts compile a
program once per machine rather than once per process.

Where the compiled programs go:

* ``PROBSNN_CACHE_DIR=/some/folder`` moves the cache there;
* ``PROBSNN_CACHE=off`` (or ``PROBSNN_CACHE_DIR=""``) leaves JAX's settings alone (no cache,
  unless you turned JAX's on yourself), and so does ``JAX_ENABLE_COMPILATION_CACHE=false``;
* a cache folder you gave JAX yourself (``JAX_COMPILATION_CACHE_DIR`` or
  ``jax.config.update("jax_compilation_cache_dir", ...)`` before ``import probsnn``) is kept;
* otherwise ``$XDG_CACHE_HOME/probsnn/jax`` (``~/.cache/probsnn/jax``).

The command line has ``--jax-cache DIR`` and ``--no-jax-cache``. The folder is the user's own:
JAX trusts what it finds there (whoever can write to it can make your JAX process run code), so
do not share it with users you do not trust.

Small programs are cached too (JAX by default keeps only those that took more than a second to
compile). Entries are written atomically (a temporary file in the same folder, then a rename),
so processes sharing the folder at the same time, or one killed while writing, never leave a
partial entry that another would read.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import jax

#: Environment variables: the cache folder, and the switch ("off", "0", "false", "no").
ENV_DIR = "PROBSNN_CACHE_DIR"
ENV_SWITCH = "PROBSNN_CACHE"
_OFF = {"off", "0", "false", "no", "none", "disable", "disabled"}

#: Compile time (seconds) from which a program is cached; JAX's own default is 1 s, which on a
#: CPU leaves out nearly every program of a comparison cell (each compiles in 0.05-1 s).
MIN_COMPILE_SECONDS = 0.0

#: JAX's defaults of the two thresholds (changed only while they still hold them).
_JAX_DEFAULT_MIN_COMPILE_SECONDS = 1.0
_JAX_DEFAULT_MIN_ENTRY_BYTES = 0


def default_cache_dir() -> Path | None:
    """The folder the environment asks for: ``PROBSNN_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/probsnn/jax`` (``~/.cache/probsnn/jax``); None when ``PROBSNN_CACHE`` is
    "off" or ``PROBSNN_CACHE_DIR`` is set to the empty string."""
    if switched_off(ENV_SWITCH):
        return None
    if ENV_DIR in os.environ:
        folder = os.environ[ENV_DIR].strip()
        return Path(folder).expanduser() if folder else None
    return user_cache_root() / "jax"


def switched_off(variable: str) -> bool:
    """Whether the environment variable ``variable`` says "off" (or 0, false, no, ...)."""
    return os.environ.get(variable, "").strip().lower() in _OFF


def user_cache_root() -> Path:
    """``$XDG_CACHE_HOME/probsnn`` (``~/.cache/probsnn``): where probsnn keeps what it builds."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "probsnn"


def compilation_cache_dir() -> Path | None:
    """The persistent compilation cache folder JAX uses now, or None when it has none."""
    folder = jax.config.jax_compilation_cache_dir
    if not folder or not jax.config.jax_enable_compilation_cache:
        return None
    return Path(folder)


def enable_compilation_cache(path=None) -> Path | None:
    """Turn on JAX's persistent compilation cache, so compiled programs are kept on disk and a
    later process loads them instead of compiling again.

    ``import probsnn`` calls this once (``path=None``), so notebooks and scripts get the cache
    without asking; call it yourself to move the folder. With ``path=None`` the folder is, in
    order: ``PROBSNN_CACHE_DIR``; a folder already given to JAX (``JAX_COMPILATION_CACHE_DIR``
    or ``jax.config``), kept as it is with JAX's own thresholds; ``$XDG_CACHE_HOME/probsnn/jax``
    (``~/.cache/probsnn/jax``). ``PROBSNN_CACHE=off`` (or ``PROBSNN_CACHE_DIR=""``, or JAX's
    own ``JAX_ENABLE_COMPILATION_CACHE=false``) leaves JAX's settings alone and returns None. The
    folder is created at the first compilation.

    Programs are cached whatever their compile time and size (JAX's defaults keep only those
    that took a second to compile), unless those thresholds were set already (environment or
    ``jax.config``). Entries are written atomically (temporary file + rename).

    Args:
        path: the cache folder (str or path-like), used whatever the environment says; None for
            the default above.

    Returns:
        The cache folder, or None when the environment turned the cache off.

    Raises:
        TypeError: ``path`` is not a str or path-like.
        ValueError: ``path`` is empty.
    """
    if path is None:
        folder = default_cache_dir()
        if folder is None or not jax.config.jax_enable_compilation_cache:
            return None  # turned off here, or in JAX by the user (JAX_ENABLE_COMPILATION_CACHE)
        configured = compilation_cache_dir()
        if configured is not None and ENV_DIR not in os.environ:
            _make_writes_atomic()
            return configured  # the user's own JAX setting
    else:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or path-like folder, got {path!r}")
        if not os.fspath(path).strip():
            raise ValueError("path must name a folder, got an empty string")
        folder = Path(path).expanduser()
    folder = folder.absolute()
    _make_writes_atomic()
    if compilation_cache_dir() != folder:
        _reset()
        jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_enable_compilation_cache", True)
    if (
        jax.config.jax_persistent_cache_min_compile_time_secs == _JAX_DEFAULT_MIN_COMPILE_SECONDS
        and "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ
    ):
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    if (
        jax.config.jax_persistent_cache_min_entry_size_bytes == _JAX_DEFAULT_MIN_ENTRY_BYTES
        and "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES" not in os.environ
    ):
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return folder


def disable_compilation_cache() -> None:
    """Turn JAX's persistent compilation cache off in this process (programs compile anew)."""
    _reset()
    jax.config.update("jax_compilation_cache_dir", None)


_SETTINGS = (
    "jax_compilation_cache_dir",
    "jax_enable_compilation_cache",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
)
_ENVIRONMENT = (ENV_DIR, ENV_SWITCH, "JAX_COMPILATION_CACHE_DIR")


@contextlib.contextmanager
def saved_settings():
    """Restore the cache settings (JAX's and the environment's) on exit: the command line's
    ``--jax-cache``/``--no-jax-cache`` hold for one call of :func:`probsnn.cli.main`."""
    settings = {name: getattr(jax.config, name) for name in _SETTINGS}
    environment = {name: os.environ.get(name) for name in _ENVIRONMENT}
    try:
        yield
    finally:
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if any(getattr(jax.config, name) != value for name, value in settings.items()):
            _reset()
            for name, value in settings.items():
                jax.config.update(name, value)


def _reset() -> None:
    """Forget the cache JAX opened, so the next compilation opens the folder configured then."""
    with contextlib.suppress(ImportError, AttributeError):
        from jax.experimental.compilation_cache import compilation_cache

        compilation_cache.reset_cache()


def _make_writes_atomic() -> None:
    """Have JAX's file cache write each entry to a temporary file and rename it into place.

    Without the optional ``filelock`` package (and a size limit) JAX writes an entry in place,
    so a second process can read it half-written, and a process killed while writing leaves a
    truncated entry that JAX never replaces. This wraps JAX's (private) factory of the file
    cache; if JAX's internals differ from what it expects it leaves them alone.
    """
    try:
        from jax._src import compilation_cache as jax_cache
        from jax._src import lru_cache
    except ImportError:  # pragma: no cover - another JAX layout: keep its own writes
        return
    factory = getattr(jax_cache, "get_file_cache", None)
    base = getattr(lru_cache, "LRUCache", None)
    suffix = getattr(lru_cache, "_CACHE_SUFFIX", None)
    if factory is None or base is None or suffix is None or getattr(factory, "_probsnn", False):
        return

    class AtomicFileCache(base):
        """JAX's file cache, writing entries through a temporary file and a rename."""

        def put(self, key: str, value: bytes) -> None:
            folder = os.fspath(self.path)
            if self.eviction_enabled or "://" in folder:
                return super().put(key, value)  # locked (eviction) or remote: JAX's own way
            if not key:
                raise ValueError("key cannot be empty")
            target = os.path.join(folder, f"{key}{suffix}")
            if os.path.exists(target):
                return None
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(value)
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
            return None

    def get_file_cache(path: str):
        cached = factory(path)
        if cached is None or type(cached[0]) is not base or cached[0].eviction_enabled:
            return cached  # locked, verifying or otherwise wrapped: leave it as JAX made it
        return AtomicFileCache(path, max_size=-1), cached[1]

    get_file_cache._probsnn = True
    jax_cache.get_file_cache = get_file_cache


def _enable_on_import() -> None:
    """``import probsnn``: the cache as the environment says; never fails the import."""
    try:
        enable_compilation_cache()
    except Exception:  # pragma: no cover - a cache must never stop the library from loading
        return
