"""Record golden trajectories of Gymnasium's CartPole-v1, Pendulum-v1 and
MountainCarContinuous-v0.

Fixed initial states (set on ``env.unwrapped.state`` after a reset) and fixed action
sequences (or, for one MountainCar case, a fixed feedback rule), so no RNG is involved. Run with the peers' venv (gymnasium 1.4):

    /tmp/peers-venv/bin/python scripts/golden_classic.py > crates/taper-envs/tests/data/classic_golden.json
"""
import json
import math

import gymnasium as gym
import numpy as np


def cartpole_cases():
    cases = []
    starts = [[0.01, -0.02, 0.03, 0.04], [-0.04, 0.03, -0.02, -0.01], [0.0, 0.0, 0.19, 0.0]]
    for k, s0 in enumerate(starts):
        env = gym.make("CartPole-v1")
        env.reset(seed=0)
        env.unwrapped.state = np.array(s0, dtype=np.float64)
        actions = [(i * 7 + k) % 3 % 2 for i in range(60)]
        obs, rews, terms = [], [], []
        for a in actions:
            o, r, te, tr, _ = env.step(a)
            obs.append([float(x) for x in o])
            rews.append(float(r))
            terms.append(bool(te))
            if te or tr:
                break
        cases.append({"init": s0, "actions": actions[: len(obs)], "obs": obs, "rewards": rews, "terminated": terms})
    return cases


def pendulum_cases():
    cases = []
    starts = [[math.pi - 0.1, 0.5], [0.3, -0.9], [-2.5, 0.0]]
    for k, (th, thdot) in enumerate(starts):
        env = gym.make("Pendulum-v1")
        env.reset(seed=0)
        env.unwrapped.state = np.array([th, thdot], dtype=np.float64)
        actions = [2.0 * math.sin(0.37 * i + k) for i in range(80)]
        obs, rews = [], []
        for a in actions:
            o, r, te, tr, _ = env.step(np.array([a], dtype=np.float32))
            obs.append([float(x) for x in o])
            rews.append(float(r))
        cases.append({"init": [th, thdot], "actions": [float(np.float32(a)) for a in actions], "obs": obs, "rewards": rews})
    return cases


def mountain_car_cases():
    """From float64 starts (as a reset leaves them) through float32 steps; one case is pushed
    against the left wall, one swings up to the goal."""
    cases = []
    starts = [[-0.5, 0.0], [-1.1, -0.06], [-0.45, 0.0]]
    for k, (x, v) in enumerate(starts):
        env = gym.make("MountainCarContinuous-v0")
        env.reset(seed=0)
        env.unwrapped.state = np.array([x, v], dtype=np.float64)
        if k == 2:
            # Swing: push with the velocity's sign (a policy that reaches the goal).
            actions = None
        else:
            actions = [math.sin(0.21 * i + k) for i in range(150)]
        obs, rews, terms, acts = [], [], [], []
        for i in range(400 if actions is None else len(actions)):
            if actions is None:
                vel = float(env.unwrapped.state[1])
                a = 1.0 if vel >= 0 else -1.0
                a = a * (0.9 + 0.1 * math.cos(i))
            else:
                a = actions[i]
            a32 = np.float32(a)
            o, r, te, tr, _ = env.step(np.array([a32], dtype=np.float32))
            acts.append(float(a32))
            obs.append([float(x) for x in o])
            rews.append(float(r))
            terms.append(bool(te))
            if te or tr:
                break
        cases.append({"init": [x, v], "actions": acts, "obs": obs, "rewards": rews, "terminated": terms})
    return cases


print(json.dumps({"gymnasium": gym.__version__, "cartpole": cartpole_cases(), "pendulum": pendulum_cases(),
                  "mountain_car": mountain_car_cases()}))
