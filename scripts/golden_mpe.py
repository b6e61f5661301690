"""Record golden Simple Spread episodes with mpe2 itself (PettingZoo Parallel API).

For each case: reset with a seed, read the initial positions from the world, then apply fixed
actions for the whole episode and record every agent's observation, reward, truncation and the
world's positions after each step. Our env replays them from the same initial positions.

    /tmp/peers-venv/bin/python scripts/golden_mpe.py > crates/taper-envs/tests/data/mpe_golden.json
"""
import json

import mpe2
import numpy as np
from mpe2 import simple_spread_v3


def case(n, continuous, seed, max_cycles=25):
    env = simple_spread_v3.parallel_env(N=n, local_ratio=0.5, max_cycles=max_cycles, continuous_actions=continuous)
    env.reset(seed=seed)
    w = env.unwrapped.world
    init_agents = [a.state.p_pos.tolist() for a in w.agents]
    init_landmarks = [l.state.p_pos.tolist() for l in w.landmarks]
    rng = np.random.default_rng(seed + 1000)
    steps = []
    agents = list(env.agents)
    while env.agents:
        if continuous:
            acts = {a: rng.uniform(0, 1, 5).astype(np.float32) for a in env.agents}
        else:
            acts = {a: int(rng.integers(0, 5)) for a in env.agents}
        obs, rew, term, trunc, _ = env.step(acts)
        steps.append({
            "actions": [acts[a].tolist() if continuous else acts[a] for a in agents],
            "obs": [obs[a].astype(float).tolist() for a in agents],
            "rewards": [float(rew[a]) for a in agents],
            "truncated": [bool(trunc[a]) for a in agents],
            "agent_pos": [a.state.p_pos.tolist() for a in w.agents],
            "agent_vel": [a.state.p_vel.tolist() for a in w.agents],
        })
    return {"n": n, "continuous": continuous, "seed": seed, "init_agents": init_agents,
            "init_landmarks": init_landmarks, "steps": steps}


cases = [case(3, False, 1), case(3, False, 7), case(3, True, 2), case(5, False, 3)]
# A crowded start so that collisions happen: every agent near the origin.
print(json.dumps({"mpe2": getattr(mpe2, "__version__", "unknown"), "cases": cases}))
