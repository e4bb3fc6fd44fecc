"""A compiled CPU kernel for the sparse network's event-driven drive, with XLA as the fallback.

XLA's CPU backend delivers a sparse network's spikes as a gather of the spiking neurons' synapse
rows followed by a scatter-add, each materialising its (spikes × F) operands in memory: about
5 ns per synapse event, twice what the same loop costs as plain C (profiled on a 2-core EPYC,
10⁸ synapses). This module holds that loop as a small C function, compiled the first time it is
needed with the system's C compiler against the XLA FFI header that ships with jaxlib, kept in
``$XDG_CACHE_HOME/probsnn/native`` (``~/.cache/probsnn/native``; ``PROBSNN_CACHE_DIR``'s parent
folder when that is set) and registered with JAX as a CPU custom call.

It adds the very updates of the XLA path in the very same order (spikes in trial-major neuron
order, each one's synapses in table order, onto a zeroed buffer), so both give bit-identical
drives and the same spikes for the same key. Other backends, float64 weights, a machine without
a C compiler, and ``PROBSNN_NATIVE=off`` use the XLA path; a failed compilation warns once.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp

from probsnn import _cache

#: The custom-call target's name.
TARGET = "probsnn_sparse_drive"
#: Environment switch: "off" (or 0, false, no) keeps the XLA path.
ENV_SWITCH = "PROBSNN_NATIVE"

SOURCE = r"""
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "xla/ffi/api/c_api.h"

#define MAX_PARTS 16
#define EVENTS_PER_PART 65536 /* a bin with fewer synapse events stays in one part */

typedef struct {
  const uint8_t* spikes;
  const int32_t* targets;
  const float* w;
  float* d;
  int64_t n_trials, n, fan_out, n_modes;
} Bin;

static int64_t first_at_least(const int32_t* row, int64_t length, int32_t value) {
  int64_t a = 0, b = length;
  while (a < b) {
    const int64_t m = a + (b - a) / 2;
    if (row[m] < value) a = m + 1; else b = m;
  }
  return a;
}

/* D[b, t, :] += w[j, s, :] for the targets t = targets[j, s] in [lo, hi), over the spikes in
   trial-major neuron order and each row in table order, so that every target receives its
   updates in the order of one sequential pass. split: rows ascend, and the slots of [lo, hi)
   are found by binary search. */
static void add_rows(const Bin* bin, int32_t lo, int32_t hi, int split) {
  const int64_t n = bin->n, fan_out = bin->fan_out, n_modes = bin->n_modes;
  for (int64_t b = 0; b < bin->n_trials; ++b) {
    float* out = bin->d + b * n * n_modes;
    for (int64_t j = 0; j < n; ++j) {
      if (!bin->spikes[b * n + j]) continue;
      const int32_t* row = bin->targets + j * fan_out;
      const float* rows = bin->w + j * fan_out * n_modes;
      int64_t start = 0, stop = fan_out;
      if (split) {
        start = first_at_least(row, fan_out, lo);
        stop = first_at_least(row, fan_out, hi);
      }
      if (n_modes == 3) {
        for (int64_t k = start; k < stop; ++k) {
          const int32_t t = row[k];
          if (t < lo || t >= hi) continue;
          float* o = out + 3 * (int64_t)t;
          const float* v = rows + 3 * k;
          o[0] += v[0]; o[1] += v[1]; o[2] += v[2];
        }
      } else {
        for (int64_t k = start; k < stop; ++k) {
          const int32_t t = row[k];
          if (t < lo || t >= hi) continue;
          float* o = out + n_modes * (int64_t)t;
          const float* v = rows + n_modes * k;
          for (int64_t m = 0; m < n_modes; ++m) o[m] += v[m];
        }
      }
    }
  }
}

/* Parts of one bin, claimed one at a time by the calling thread and by tasks on XLA's thread
   pool; freed by whichever holder lets go last (a task may start after the call returned). */
typedef struct {
  Bin bin;
  int64_t parts;
  atomic_llong next, pending, holders;
} Shared;

static void let_go(Shared* shared) {
  if (atomic_fetch_sub(&shared->holders, 1) == 1) free(shared);
}

static void claim_parts(Shared* shared) {
  for (;;) {
    const int64_t i = atomic_fetch_add(&shared->next, 1);
    if (i >= shared->parts) return;
    const int64_t n = shared->bin.n;
    add_rows(&shared->bin, (int32_t)(n * i / shared->parts),
             (int32_t)(n * (i + 1) / shared->parts), 1);
    atomic_fetch_sub(&shared->pending, 1);
  }
}

static void task(void* data) {
  claim_parts((Shared*)data);
  let_go((Shared*)data);
}

static void drop_error(const XLA_FFI_Api* api, XLA_FFI_Error* error) {
  XLA_FFI_Error_Destroy_Args args = {XLA_FFI_Error_Destroy_Args_STRUCT_SIZE, NULL, error};
  api->XLA_FFI_Error_Destroy(&args);
}

static int64_t pool_threads(const XLA_FFI_CallFrame* frame) {
  int64_t threads = 1;
  XLA_FFI_ThreadPool_NumThreads_Args args = {
      XLA_FFI_ThreadPool_NumThreads_Args_STRUCT_SIZE, NULL, frame->ctx, &threads};
  XLA_FFI_Error* error = frame->api->XLA_FFI_ThreadPool_NumThreads(&args);
  if (error != NULL) {
    drop_error(frame->api, error);
    return 1;
  }
  return threads;
}

/* args: spikes (B, N) uint8, targets (N, F) int32 (N pads), w (N, F, J) float32, ascending ()
   int32 (1: every row of targets ascends); ret: D (B, N, J) float32. */
XLA_FFI_Error* probsnn_sparse_drive(XLA_FFI_CallFrame* frame) {
  XLA_FFI_Extension_Base* extension = frame->extension_start;
  if (extension != NULL && extension->type == XLA_FFI_Extension_Metadata) {
    XLA_FFI_Metadata* metadata = ((XLA_FFI_Metadata_Extension*)extension)->metadata;
    metadata->api_version.struct_size = XLA_FFI_Api_Version_STRUCT_SIZE;
    metadata->api_version.extension_start = NULL;
    metadata->api_version.major_version = XLA_FFI_API_MAJOR;
    metadata->api_version.minor_version = XLA_FFI_API_MINOR;
    metadata->traits = 0;
    if (metadata->struct_size >= XLA_FFI_Metadata_STRUCT_SIZE) metadata->state_type_id.type_id = 0;
    return NULL;
  }
  if (frame->stage != XLA_FFI_ExecutionStage_EXECUTE) return NULL;
  void** args = frame->args.args;
  const XLA_FFI_Buffer* spikes = (const XLA_FFI_Buffer*)args[0];
  const XLA_FFI_Buffer* table = (const XLA_FFI_Buffer*)args[1];
  const XLA_FFI_Buffer* weights = (const XLA_FFI_Buffer*)args[2];
  const int32_t ascending = *(const int32_t*)((const XLA_FFI_Buffer*)args[3])->data;
  const XLA_FFI_Buffer* result = (const XLA_FFI_Buffer*)frame->rets.rets[0];
  Bin bin = {(const uint8_t*)spikes->data, (const int32_t*)table->data,
             (const float*)weights->data, (float*)result->data, spikes->dims[0],
             spikes->dims[1], table->dims[1], weights->dims[2]};
  memset(bin.d, 0, sizeof(float) * (size_t)(bin.n_trials * bin.n * bin.n_modes));
  int64_t count = 0;
  for (int64_t i = 0; i < bin.n_trials * bin.n; ++i) count += bin.spikes[i] != 0;
  int64_t parts = ascending ? pool_threads(frame) : 1;
  if (parts > count * bin.fan_out / EVENTS_PER_PART) parts = count * bin.fan_out / EVENTS_PER_PART;
  if (parts > MAX_PARTS) parts = MAX_PARTS;
  if (parts > bin.n) parts = bin.n;
  Shared* shared = parts > 1 ? (Shared*)malloc(sizeof(Shared)) : NULL;
  if (shared == NULL) {
    add_rows(&bin, 0, (int32_t)bin.n, 0);
    return NULL;
  }
  shared->bin = bin;
  shared->parts = parts;
  atomic_init(&shared->next, 0);
  atomic_init(&shared->pending, parts);
  atomic_init(&shared->holders, 1);
  for (int64_t i = 1; i < parts; ++i) {
    atomic_fetch_add(&shared->holders, 1);
    XLA_FFI_ThreadPool_Schedule_Args schedule = {
        XLA_FFI_ThreadPool_Schedule_Args_STRUCT_SIZE, NULL, frame->ctx, task, shared};
    XLA_FFI_Error* error = frame->api->XLA_FFI_ThreadPool_Schedule(&schedule);
    if (error != NULL) { /* no pool: this thread takes the remaining parts */
      drop_error(frame->api, error);
      atomic_fetch_sub(&shared->holders, 1);
      break;
    }
  }
  claim_parts(shared);
  while (atomic_load(&shared->pending) > 0) {
  } /* every part is claimed: the others are finishing theirs */
  let_go(shared);
  return NULL;
}
"""

_registered: bool | None = None  # None: not tried in this process


def enabled() -> bool:
    """False when ``PROBSNN_NATIVE`` switches the kernel off."""
    return not _cache.switched_off(ENV_SWITCH)


def _cache_dir() -> Path:
    """Beside the compilation cache's folder when there is one, else in probsnn's user cache."""
    folder = _cache.default_cache_dir()
    return (folder.parent if folder is not None else _cache.user_cache_root()) / "native"


def _library_path(compiler: str, include: str) -> Path:
    header = Path(include, "xla", "ffi", "api", "c_api.h").read_bytes()
    digest = hashlib.blake2b(digest_size=12)
    for part in (SOURCE.encode(), header, compiler.encode(), platform.machine().encode()):
        digest.update(part)
    return _cache_dir() / f"sparse_drive_{digest.hexdigest()}.so"


def _compile(compiler: str, include: str, library: Path) -> None:
    """Compile :data:`SOURCE` into ``library``, atomically (a temporary name, then a rename)."""
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=library.parent) as work:
        source = Path(work, "sparse_drive.c")
        source.write_text(SOURCE)
        built = Path(work, library.name)
        command = [compiler, "-O3", "-std=c11", "-shared", "-fPIC", f"-I{include}"]
        subprocess.run(
            [*command, str(source), "-o", str(built)], check=True, capture_output=True, text=True
        )
        os.replace(built, library)


def available() -> bool:
    """Whether the kernel is registered with JAX for the CPU (compiling and registering it on
    the first call of the process; later calls return the first answer)."""
    global _registered
    if not enabled():
        return False
    if _registered is None:
        _registered = _register()
    return _registered


def _register() -> bool:
    ffi = getattr(jax, "ffi", None)
    if ffi is None or not hasattr(ffi, "register_ffi_target"):
        return False
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return _decline("no C compiler found (set CC)")
    try:
        include = ffi.include_dir()
        library = _library_path(compiler, include)
        if not library.exists():
            _compile(compiler, include, library)
        function = ctypes.CDLL(str(library)).probsnn_sparse_drive
        ffi.register_ffi_target(TARGET, ffi.pycapsule(function), platform="cpu")
    except subprocess.CalledProcessError as error:
        return _decline(f"{compiler} failed: {error.stderr.strip()[:400]}")
    except (OSError, AttributeError, ValueError) as error:
        return _decline(f"{type(error).__name__}: {error}")
    return True


def _decline(reason: str) -> bool:
    warnings.warn(
        f"probsnn: the compiled sparse-network kernel is unavailable ({reason}); sparse "
        f"networks sample through XLA's gather and scatter instead (same spikes, slower on the "
        f"CPU). Set {ENV_SWITCH}=off to silence this.",
        RuntimeWarning,
        stacklevel=3,
    )
    return False


def sparse_drive(flat, targets, w, ascending: bool = False):
    """``(B, N, J)`` float32 drive through the compiled kernel (call only when
    :func:`available`, and only in a CPU lowering): Σ over the spikes of ``flat`` ``(B, N)`` of
    their synapse rows ``w`` ``(N, F, J)`` float32, added at ``targets`` ``(N, F)`` int32 (the
    value N pads). With ``ascending`` rows (each row of targets in increasing order) a bin of at
    least 2¹⁷ synapse events is split by ranges of targets over XLA's CPU thread pool, each part
    finding its slots of a row by binary search; every target still receives its updates in the
    order of one sequential pass. Not differentiable by itself (see ``probsnn.propagation``)."""
    n_trials, n = flat.shape
    out = jax.ShapeDtypeStruct((n_trials, n, w.shape[-1]), jnp.float32)
    call = jax.ffi.ffi_call(TARGET, out, vmap_method="sequential")
    return call(flat.astype(jnp.uint8), targets, w, jnp.asarray(int(ascending), jnp.int32))
