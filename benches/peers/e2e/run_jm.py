"""JaxMARL's own MPE baseline (ippo_ff_mpe.py or mappo_rnn_mpe.py, imported unmodified) with its
YAML config, one training run on JAX CPU.

Usage: python e2e/run_jm.py ippo|mappo TOTAL_TIMESTEPS SEED [KEY=VALUE ...]     (jax venv)
Overrides TOTAL_TIMESTEPS, SEED, NUM_SEEDS=1 and WANDB_MODE=disabled (plus any KEY=VALUE).
The baselines call wandb.log once per update from an io_callback; it is replaced by a recorder
so the logged returns can be read back. Times the imports, lower + compile, and execution.
The baseline files are read from $JM_DIR (default: benches/peers/vendor/jaxmarl).
The logged return is the team's sum over agents; per_agent_* divides it by 3 (the default N).
exec_s_to_per_agent gives the execution time to the first update whose logged per-agent return
reaches -16, -14 and -12 (the compiled call's updates taken as equal in time), and
per_agent_returns the logged curve, one value per update.
"""
import time

T0 = time.perf_counter()
import json
import os
import sys

import jax
import numpy as np
import wandb
from omegaconf import OmegaConf

NUM_AGENTS = 3  # MPE_simple_spread_v3's default, as in both YAML configs
BASELINES = {  # algo: (module, config file, key of the logged return)
    "ippo": ("ippo_ff_mpe", "ippo_ff_mpe.yaml", "returned_episode_returns"),
    "mappo": ("mappo_rnn_mpe", "mappo_homogenous_rnn_mpe.yaml", "returns"),
}

HERE = os.path.dirname(os.path.abspath(__file__))
JM_DIR = os.environ.get("JM_DIR", os.path.join(HERE, "..", "vendor", "jaxmarl"))
sys.path.insert(0, JM_DIR)
os.chdir(JM_DIR)

algo, total_timesteps, seed = sys.argv[1], int(float(sys.argv[2])), int(sys.argv[3])
overrides = dict(arg.split("=", 1) for arg in sys.argv[4:])
module_name, config_file, return_key = BASELINES["ippo" if algo == "ippo" else "mappo"]
baseline = __import__(module_name)
T_IMPORT = time.perf_counter() - T0

config = OmegaConf.to_container(OmegaConf.load(config_file))
config.update({"TOTAL_TIMESTEPS": total_timesteps, "SEED": seed, "NUM_SEEDS": 1, "WANDB_MODE": "disabled"})
for k, v in overrides.items():  # converted to the type of the config's value; new keys are ints
    config[k] = type(config[k])(v) if k in config else int(v)
wandb.init(mode="disabled", config=config)

logged = []


def record(metrics, *args, **kwargs):
    logged.append({k: float(np.asarray(v).mean()) for k, v in metrics.items() if not isinstance(v, dict)})


wandb.log = record  # the same module object the baseline calls

rng = jax.random.PRNGKey(seed)
train = baseline.make_train(config)  # adds NUM_UPDATES to config
t1 = time.perf_counter()
compiled = jax.jit(train).lower(rng).compile()
t2 = time.perf_counter()
jax.block_until_ready(compiled(rng))
t3 = time.perf_counter()

steps = config["NUM_UPDATES"] * config["NUM_ENVS"] * config["NUM_STEPS"]
returns = [d[return_key] for d in logged if return_key in d]
last10 = float(np.mean(returns[-10:])) if returns else float("nan")


def time_to(target):
    """Execution seconds until the first update whose logged per-agent return reaches target,
    taking the compiled call's updates as equal in time (None: never reached)."""
    for u, r in enumerate(returns):
        if r / NUM_AGENTS >= target:
            return (t3 - t2) * (u + 1) / len(returns)
    return None


print("RESULT " + json.dumps({
    "algo": algo, "seed": seed, "num_envs": config["NUM_ENVS"], "num_steps": config["NUM_STEPS"],
    "env_steps": steps, "updates_logged": len(returns), "import_s": T_IMPORT,
    "compile_s": t2 - t1, "exec_s": t3 - t2, "sps_exec": steps / (t3 - t2),
    "sps_incl_compile": steps / (t3 - t1), "to_end_s": t3 - T0,
    "logged_return_last10_updates": last10, "per_agent_return_last10_updates": last10 / NUM_AGENTS,
    "exec_s_to_per_agent": {str(t): time_to(t) for t in (-16, -14, -12)},
    "per_agent_returns": [round(r / NUM_AGENTS, 3) for r in returns],
}), flush=True)
