"""What the PureJaxRL runners share: PureJaxRL on sys.path ($PJX_DIR, default
benches/peers/vendor/purejaxrl, with e2e/stubs first for the brax and navix modules that
wrappers.py imports but CartPole never uses), the gymnax 1.x step shim, and ppo.py's own
__main__ config with DEBUG off (TOTAL_TIMESTEPS is the runner's).
"""
import os
import sys

import jax.numpy as jnp

HERE = os.path.dirname(os.path.abspath(__file__))
PJX_DIR = os.environ.get("PJX_DIR", os.path.join(HERE, "..", "vendor", "purejaxrl"))
sys.path[:0] = [os.path.join(HERE, "stubs"), PJX_DIR]  # stubs first

import gymnax  # noqa: E402

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

CONFIG = {"LR": 2.5e-4, "NUM_ENVS": 4, "NUM_STEPS": 128, "UPDATE_EPOCHS": 4,
          "NUM_MINIBATCHES": 4, "GAMMA": 0.99, "GAE_LAMBDA": 0.95, "CLIP_EPS": 0.2,
          "ENT_COEF": 0.01, "VF_COEF": 0.5, "MAX_GRAD_NORM": 0.5, "ACTIVATION": "tanh",
          "ENV_NAME": "CartPole-v1", "ANNEAL_LR": True, "DEBUG": False}
