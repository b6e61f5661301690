"""MPE simple_spread_v3 (Farama `mpe2` package, PettingZoo API) steps/s on CPU, single process.

PettingZoo >= 1.25 no longer contains MPE (`import pettingzoo.mpe` raises "MPE has been moved
into its own package: MPE2") and has no `pettingzoo[mpe]` extra, so this uses
`mpe2.simple_spread_v3`. Discrete actions, max_cycles=25, other arguments at their defaults.
A "step" is one joint step of all N agents. Figures for each N in --agents:
  par_sample_N{n}_steps_per_s  parallel_env, actions from env.action_space(a).sample(),
                               env.reset() whenever env.agents is empty (every 25 steps)
  par_pregen_N{n}_steps_per_s  same, actions drawn beforehand with numpy
  reset_N{n}_us                one parallel_env.reset(), microseconds
  core_N{n}_steps_per_s        raw_env._execute_world_step() (actions, numpy physics, rewards)
                               plus one observation per agent; no wrappers, no resets
  physics_N{n}_steps_per_s     World.step() alone (the pure-numpy physics)

Run: /tmp/peers-venv/bin/python bench_mpe2.py
"""

import time

import common

TABLE = 100_000  # pre-drawn joint actions, used cyclically


def rate(work, seconds: float) -> float:
    work(200)  # warm-up
    items, dt = common.timed_loop(work, seconds)
    return items / dt


def measure(n: int, seconds: float, res: dict) -> None:
    import numpy as np
    from mpe2 import simple_spread_v3

    env = simple_spread_v3.parallel_env(N=n, max_cycles=25, continuous_actions=False)
    env.reset(seed=0)
    for a in env.possible_agents:
        env.action_space(a).seed(0)

    def par_sample(block=1000):
        for _ in range(block):
            if not env.agents:
                env.reset()
            env.step({a: env.action_space(a).sample() for a in env.agents})
        return block

    res[f"par_sample_N{n}_steps_per_s"] = rate(par_sample, seconds)

    env.reset(seed=1)
    agents = list(env.possible_agents)
    # rows of np.int64, the type Space.sample() returns
    table = [list(row) for row in np.random.default_rng(1).integers(0, 5, size=(TABLE, n))]
    cursor = [0]

    def par_pregen(block=1000):
        t = cursor[0]
        for _ in range(block):
            if not env.agents:
                env.reset()
            row = table[t % TABLE]
            env.step({a: row[i] for i, a in enumerate(agents)})
            t += 1
        cursor[0] = t
        return block

    res[f"par_pregen_N{n}_steps_per_s"] = rate(par_pregen, seconds)

    resets = 2000
    t0 = time.perf_counter()
    for _ in range(resets):
        env.reset()
    res[f"reset_N{n}_us"] = (time.perf_counter() - t0) / resets * 1e6
    env.close()

    raw = simple_spread_v3.raw_env(N=n, max_cycles=25, continuous_actions=False)
    raw.reset(seed=2)
    scenario, world = raw.scenario, raw.world
    cursor[0] = 0

    def core(block=1000):
        t = cursor[0]
        for _ in range(block):
            row = table[t % TABLE]
            for i in range(n):
                raw.current_actions[i] = row[i]
            raw._execute_world_step()
            for agent in world.agents:
                scenario.observation(agent, world).astype(np.float32)
            t += 1
        cursor[0] = t
        return block

    res[f"core_N{n}_steps_per_s"] = rate(core, seconds)

    def physics(block=1000):
        for _ in range(block):
            world.step()
        return block

    res[f"physics_N{n}_steps_per_s"] = rate(physics, seconds)
    raw.close()


def child(ns) -> None:
    res = {}
    for n in ns.agents:
        measure(n, ns.seconds, res)
    common.emit(res)


def add_args(p) -> None:
    p.add_argument("--agents", type=int, nargs="+", default=[3, 5])
    p.add_argument("--seconds", type=float, default=3.0, help="seconds timed per figure")


if __name__ == "__main__":
    common.main_for("mpe2_simple_spread", __doc__.splitlines()[0], child, add_args,
                    ["mpe2", "pettingzoo", "gymnasium", "numpy", "pygame-ce"])
