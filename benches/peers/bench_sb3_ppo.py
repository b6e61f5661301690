"""Stable-Baselines3 PPO('MlpPolicy', 'CartPole-v1').learn(100_000) on torch CPU, all defaults.

SB3's defaults: one env (DummyVecEnv + Monitor), n_steps=2048, batch_size=64, n_epochs=10,
lr=3e-4, 64-64 tanh policy and value nets, device "auto" (the CPU without CUDA), torch's
default thread count. learn(100_000) rounds up to whole rollouts: 49 x 2048 = 100,352 steps.
The only non-default is seed= (run i uses --seed + i) so that runs are reproducible.
Supplement, non-default: --torch-threads 1 calls torch.set_num_threads(1) first.
Figures:
  learn_s, learn_steps_per_s  wall seconds inside model.learn(); num_timesteps / learn_s
                              (the quantity SB3 logs as time/fps)
  setup_s                     the PPO(...) constructor (env creation, policy init)
  train_ep_rew_mean           mean return of the last <= 100 training episodes
                              (SB3's rollout/ep_rew_mean at the end)
  eval_mean_return/_std       evaluate_policy on a fresh gym.make("CartPole-v1"),
                              10 episodes, deterministic
  process_wall_s              (added by the runner) the whole process, imports included

Run: /tmp/peers-venv/bin/python bench_sb3_ppo.py
"""

import time

import common


def child(ns) -> None:
    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy

    if ns.torch_threads > 0:
        torch.set_num_threads(ns.torch_threads)
    t0 = time.perf_counter()
    model = PPO("MlpPolicy", "CartPole-v1", seed=ns.seed)
    t1 = time.perf_counter()
    model.learn(ns.total_timesteps)
    t2 = time.perf_counter()
    episodes = model.ep_info_buffer
    train_rew = float(np.mean([ep["r"] for ep in episodes])) if episodes else float("nan")
    eval_env = gym.make("CartPole-v1")
    eval_env.reset(seed=10_000 + ns.seed)
    mean_r, std_r = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    common.emit({
        "seed": ns.seed,
        "device": str(model.device),
        "torch_threads": torch.get_num_threads(),
        "setup_s": t1 - t0,
        "learn_s": t2 - t1,
        "num_timesteps": model.num_timesteps,
        "learn_steps_per_s": model.num_timesteps / (t2 - t1),
        "train_ep_rew_mean": train_rew,
        "eval_mean_return": float(mean_r),
        "eval_std_return": float(std_r),
    })


def add_args(p) -> None:
    p.add_argument("--total-timesteps", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1, help="seed of the first run; run i uses seed+i")
    p.add_argument("--torch-threads", type=int, default=0,
                   help="if > 0, torch.set_num_threads(N) before building the model; default: torch's own")


if __name__ == "__main__":
    common.main_for("sb3_ppo_cartpole", __doc__.splitlines()[0], child, add_args,
                    ["stable-baselines3", "torch", "gymnasium", "numpy"], default_runs=3, seeded=True)
