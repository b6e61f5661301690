"""Gymnasium CartPole-v1 random-action steps/s on CPU, single process.

Figures, all in env-steps/s (one step of one CartPole):
  single_sample_steps_per_s     gym.make("CartPole-v1") with its default wrappers,
                                env.action_space.sample(), reset on terminated or truncated
  single_pregen_steps_per_s     same env, actions drawn beforehand with numpy
  unwrapped_pregen_steps_per_s  env.unwrapped (bare CartPoleEnv, no time limit), pre-drawn
                                actions, reset on terminated
  sync8_steps_per_s             gym.vector.SyncVectorEnv of 8 gym.make envs, default autoreset,
                                envs.action_space.sample(); also sync8_calls_per_s
  vec8_steps_per_s              reference: gymnasium's numpy-vectorised CartPoleVectorEnv
                                (make_vec, vectorization_mode="vector_entry_point")
Each figure is timed for --seconds after a short warm-up.

Run: /tmp/peers-venv/bin/python bench_cartpole.py
"""

import common

TABLE = 100_000  # pre-drawn actions, used cyclically


def rate(work, warmup_block: int, seconds: float) -> float:
    work(warmup_block)
    items, dt = common.timed_loop(work, seconds)
    return items / dt


def child(ns) -> None:
    import gymnasium as gym
    import numpy as np

    res = {}
    actions = [np.int64(a) for a in np.random.default_rng(0).integers(0, 2, size=TABLE)]
    cursor = [0]  # position in `actions`, shared by the pre-drawn loops

    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    env.action_space.seed(0)

    def sampled(block=2000):
        for _ in range(block):
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                env.reset()
        return block

    res["single_sample_steps_per_s"] = rate(sampled, 500, ns.seconds)

    env.reset(seed=1)

    def pregen(block=2000):
        t = cursor[0]
        for _ in range(block):
            _, _, term, trunc, _ = env.step(actions[t % TABLE])
            if term or trunc:
                env.reset()
            t += 1
        cursor[0] = t
        return block

    res["single_pregen_steps_per_s"] = rate(pregen, 500, ns.seconds)

    bare = env.unwrapped
    bare.reset(seed=2)

    def bare_pregen(block=2000):
        t = cursor[0]
        for _ in range(block):
            _, _, term, _, _ = bare.step(actions[t % TABLE])
            if term:
                bare.reset()
            t += 1
        cursor[0] = t
        return block

    res["unwrapped_pregen_steps_per_s"] = rate(bare_pregen, 500, ns.seconds)
    env.close()

    n = ns.num_envs

    def sync_env():
        return gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(n)])

    def vec_env():
        return gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point")

    # (label, constructor, block, warm-up block); each is built only when its turn comes
    vector_envs = [("sync", sync_env, 500, 100), ("vec", vec_env, 2000, 200)]
    for label, make, block_size, warmup in vector_envs:
        venv = make()
        venv.reset(seed=0)
        venv.action_space.seed(0)

        def calls(block=block_size, venv=venv):
            for _ in range(block):
                venv.step(venv.action_space.sample())
            return block

        per_s = rate(calls, warmup, ns.seconds)
        res[f"{label}{n}_calls_per_s"] = per_s
        res[f"{label}{n}_steps_per_s"] = per_s * n
        venv.close()
    common.emit(res)


def add_args(p) -> None:
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--seconds", type=float, default=3.0)


if __name__ == "__main__":
    common.main_for("gymnasium_cartpole", __doc__.splitlines()[0], child, add_args, ["gymnasium", "numpy"])
