"""PureJaxRL's purejaxrl/ppo.py (imported, unmodified) on CartPole-v1, JAX CPU, one training run.

Usage: python e2e/run_pjx.py TOTAL_TIMESTEPS SEED        (jax venv; TOTAL_TIMESTEPS may be 1e5)
The config is ppo.py's own __main__ config with DEBUG off and TOTAL_TIMESTEPS from argv.
Times the imports, the first call (trace + compile + run) and a second call of the compiled
function with another key (seed + 1000). ppo.py and wrappers.py are read from $PJX_DIR
(default: benches/peers/vendor/purejaxrl); e2e/stubs provides the brax and navix modules
wrappers.py imports but this path never uses.
"""
import time

T0 = time.perf_counter()
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PJX_DIR = os.environ.get("PJX_DIR", os.path.join(HERE, "..", "vendor", "purejaxrl"))
sys.path[:0] = [os.path.join(HERE, "stubs"), PJX_DIR]  # stubs first

import gymnax

_gymnax_make = gymnax.make


class FiveTupleStep:
    """gymnax 1.x steps return (obs, state, reward, terminated, truncated, info); ppo.py and
    wrappers.py expect the older (obs, state, reward, done, info) with done = either."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)

    def reset(self, key, params=None):
        return self._env.reset(key, params)

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, state, reward, jnp.logical_or(terminated, truncated), info


def _make(name, **kwargs):
    env, params = _gymnax_make(name, **kwargs)
    return FiveTupleStep(env), params


gymnax.make = _make  # ppo.py calls gymnax.make inside make_train

from ppo import make_train  # noqa: E402  (PureJaxRL)

T_IMPORT = time.perf_counter() - T0

total_timesteps, seed = int(float(sys.argv[1])), int(sys.argv[2])
config = {"LR": 2.5e-4, "NUM_ENVS": 4, "NUM_STEPS": 128, "TOTAL_TIMESTEPS": total_timesteps,
          "UPDATE_EPOCHS": 4, "NUM_MINIBATCHES": 4, "GAMMA": 0.99, "GAE_LAMBDA": 0.95,
          "CLIP_EPS": 0.2, "ENT_COEF": 0.01, "VF_COEF": 0.5, "MAX_GRAD_NORM": 0.5,
          "ACTIVATION": "tanh", "ENV_NAME": "CartPole-v1", "ANNEAL_LR": True, "DEBUG": False}
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
print("RESULT " + json.dumps({
    "seed": seed, "steps": config["NUM_UPDATES"] * 4 * 128, "import_s": T_IMPORT,
    "first_call_s": t2 - t1, "second_call_s": t3 - t2, "to_end_of_first_call_s": t2 - T0,
    "return_last20": ret1, "episodes": episodes, "return_last20_second_call": ret2,
    "jax": jax.__version__, "devices": str(jax.devices()),
}), flush=True)
