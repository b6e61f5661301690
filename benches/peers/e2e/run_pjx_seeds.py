"""PureJaxRL's purejaxrl/ppo.py (imported, unmodified) on CartPole-v1, JAX CPU: K seeds trained
in one call, `jax.jit(jax.vmap(make_train(config)))` over K keys, as PureJaxRL's README
batches seeds.

Usage: python e2e/run_pjx_seeds.py TOTAL_TIMESTEPS NUM_SEEDS FIRST_SEED      (jax venv)
Same config, shims and $PJX_DIR as e2e/run_pjx.py. Times the imports, the first call (trace +
compile + run) and a second call of the compiled function with other keys (FIRST_SEED + 1000
onwards); reports each seed's mean return over its last 20 finished episodes.
"""
import time

T0 = time.perf_counter()
import json
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pjx_shim  # noqa: E402  (PureJaxRL on sys.path, the gymnax 1.x shim, the config)
from ppo import make_train  # noqa: E402  (PureJaxRL)

T_IMPORT = time.perf_counter() - T0

total_timesteps, num_seeds, first = int(float(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
config = dict(pjx_shim.CONFIG, TOTAL_TIMESTEPS=total_timesteps)
train = jax.jit(jax.vmap(make_train(config)))


def keys(start):
    return jax.numpy.stack([jax.random.PRNGKey(start + i) for i in range(num_seeds)])


def last_returns(out, k=20):
    """Per seed: the mean return of its last k finished episodes."""
    returns = np.asarray(out["metrics"]["returned_episode_returns"]).reshape(num_seeds, -1)
    finished = np.asarray(out["metrics"]["returned_episode"]).reshape(num_seeds, -1).astype(bool)
    return [float(r[f][-k:].mean()) for r, f in zip(returns, finished)]


t1 = time.perf_counter()
out1 = jax.block_until_ready(train(keys(first)))
t2 = time.perf_counter()
out2 = jax.block_until_ready(train(keys(first + 1000)))
t3 = time.perf_counter()

print("RESULT " + json.dumps({
    "num_seeds": num_seeds, "first_seed": first, "steps_per_seed": config["NUM_UPDATES"] * 4 * 128,
    "import_s": T_IMPORT, "first_call_s": t2 - t1, "second_call_s": t3 - t2,
    "return_last20": last_returns(out1), "return_last20_second_call": last_returns(out2),
    "jax": jax.__version__, "devices": str(jax.devices()),
}), flush=True)
