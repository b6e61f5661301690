"""PureJaxRL's purejaxrl/ppo.py (imported, unmodified) on CartPole-v1, JAX CPU, one training run.

Usage: python e2e/run_pjx.py TOTAL_TIMESTEPS SEED        (jax venv; TOTAL_TIMESTEPS may be 1e5)
The config is ppo.py's own __main__ config with DEBUG off and TOTAL_TIMESTEPS from argv.
Times the imports, the first call (trace + compile + run) and a second call of the compiled
function with another key (seed + 1000), and the second call's time to a mean return of 475
over its last 20 finished episodes (updates take equal time inside the compiled scan).
ppo.py and wrappers.py are read from $PJX_DIR (default: benches/peers/vendor/purejaxrl);
e2e/stubs provides the brax and navix modules wrappers.py imports but this path never uses.
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

total_timesteps, seed = int(float(sys.argv[1])), int(sys.argv[2])
config = dict(pjx_shim.CONFIG, TOTAL_TIMESTEPS=total_timesteps)
train = jax.jit(make_train(config))  # make_train adds NUM_UPDATES to config


def last_returns(out, k=20):
    """Mean return of the last k finished episodes, and how many episodes finished."""
    metrics = out["metrics"]
    returns = np.asarray(metrics["returned_episode_returns"]).reshape(-1)
    finished = np.asarray(metrics["returned_episode"]).reshape(-1).astype(bool)
    return float(returns[finished][-k:].mean()), int(finished.sum())


t1 = time.perf_counter()
out1 = jax.block_until_ready(train(jax.random.PRNGKey(seed)))
t2 = time.perf_counter()
out2 = jax.block_until_ready(train(jax.random.PRNGKey(seed + 1000)))
t3 = time.perf_counter()

ret1, episodes = last_returns(out1)
ret2, _ = last_returns(out2)


def first_update_at(out, target=475.0, k=20):
    """The first update after which the mean return of the last k finished episodes is at
    least target (None if never), and the number of updates."""
    returns = np.asarray(out["metrics"]["returned_episode_returns"])  # [updates, steps, envs]
    finished = np.asarray(out["metrics"]["returned_episode"]).astype(bool)
    seen = []
    for u in range(returns.shape[0]):
        seen.extend(returns[u][finished[u]].tolist())
        if len(seen) >= k and np.mean(seen[-k:]) >= target:
            return u, returns.shape[0]
    return None, returns.shape[0]


# The compiled call's time to a return of 475: its updates take equal time (one lax.scan), so
# the time to the end of update u is (u + 1) / updates of the call.
u475, updates = first_update_at(out2)
print("RESULT " + json.dumps({
    "seed": seed, "steps": config["NUM_UPDATES"] * 4 * 128, "import_s": T_IMPORT,
    "first_call_s": t2 - t1, "second_call_s": t3 - t2, "to_end_of_first_call_s": t2 - T0,
    "return_last20": ret1, "episodes": episodes, "return_last20_second_call": ret2,
    "second_call_update_at_475": u475,
    "second_call_time_to_475_s": None if u475 is None else (t3 - t2) * (u475 + 1) / updates,
    "jax": jax.__version__, "devices": str(jax.devices()),
}), flush=True)
