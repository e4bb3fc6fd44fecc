"""One of two processes of tests/scale/test_distributed.py (2 CPU devices each).

``python distributed_worker.py PROCESS_ID PORT`` joins a 2-process JAX cluster on localhost
(:func:`jax.distributed.initialize`, Gloo collectives on CPU), then checks that the
log-likelihood, its gradient and one ``fit_ml`` Newton step over a mesh spanning both processes'
4 devices equal the same calls on this process alone, and prints ``ok``.
"""

import os
import sys
import warnings

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_cpu_collectives_implementation", "gloo")
process_id, port = int(sys.argv[1]), sys.argv[2]
jax.distributed.initialize(
    coordinator_address=f"127.0.0.1:{port}",
    num_processes=2,
    process_id=process_id,
    initialization_timeout=120,
)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import probsnn as ps  # noqa: E402
from probsnn import inference, kernels, parallel  # noqa: E402

assert jax.process_count() == 2 and jax.device_count() == 4 and jax.local_device_count() == 2
mesh = parallel.trial_mesh()
spec = ps.Network(4, kernels.raised_cosine(3, 1, 10), dt=1e-3)
truth = spec.init_params(jax.random.key(0), rate=30.0, weight_scale=2.0)
spikes = ps.sample(spec, truth, jax.random.key(1), 500, 8)  # the same on both processes
spikes = np.asarray(spikes, np.float64)
params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), truth)

local = ps.log_likelihood(spec, params, spikes)
spread = ps.log_likelihood(spec, params, spikes, mesh=mesh)
np.testing.assert_allclose(float(spread), float(local), rtol=1e-12)

grad_local = jax.grad(lambda p: ps.log_likelihood(spec, p, spikes))(params)
grad_spread = jax.grad(lambda p: ps.log_likelihood(spec, p, spikes, mesh=mesh))(params)
for a, b in zip(jax.tree.leaves(grad_spread), jax.tree.leaves(grad_local), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10)

run = dict(l2=1.0, max_iter=1, preconditioner="shared")  # what a mesh uses
with warnings.catch_warnings():
    warnings.simplefilter("ignore", inference.ConvergenceWarning)  # one step does not converge
    one_step_local = inference.fit_ml(spec, spikes, **run)
    one_step_spread = inference.fit_ml(spec, spikes, mesh=mesh, **run)
for a, b in zip(
    jax.tree.leaves(one_step_spread.params), jax.tree.leaves(one_step_local.params), strict=True
):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-9)
print("ok", flush=True)
