"""JaxMARL MPE simple spread (``MPE_simple_spread_v3``) env-steps/s on CPU with jax (XLA CPU backend).

The step is JaxMARL's auto-resetting env.step (episode length = default max_steps = 25).
Random discrete actions are drawn inside the compiled function with jax.random, and the
observations and rewards are summed into a carried checksum so XLA cannot drop them.
One env-step is one joint step of all N agents of one env. Figures for each N in --agents:
  scan_N{n}_E{E}_steps_per_s  jit(lax.scan(vmap(step), length=T)) over E envs: one compiled
                              call runs T steps of E envs (E in --scan-envs, default 1024 and 1)
  loop_N{n}_E{E}_steps_per_s  a Python loop calling jit(vmap(step)) once per step
                              (E in --loop-envs, default 1024)
  *_compile_s                 the first call: trace + XLA compile + one run

Run: /tmp/peers-venv-jax/bin/python bench_jaxmarl.py
"""

import time

import common


def measure(n: int, ns, res: dict) -> None:
    import jax
    import jax.numpy as jnp
    import jaxmarl

    env = jaxmarl.make("MPE_simple_spread_v3", num_agents=n, num_landmarks=n)
    agents = env.agents
    n_actions = env.action_space(agents[0]).n

    def one_step(key, state, checksum):
        k_act, k_step = jax.random.split(key)
        k_agents = jax.random.split(k_act, len(agents))
        actions = {a: jax.random.randint(k_agents[i], (), 0, n_actions) for i, a in enumerate(agents)}
        obs, state, rew, _dones, _info = env.step(k_step, state, actions)
        checksum = checksum + sum(jnp.sum(obs[a]) for a in agents) + sum(rew[a] for a in agents)
        return state, checksum

    vstep = jax.vmap(one_step)

    def fresh(seed: int, num_envs: int):
        key = jax.random.PRNGKey(seed)
        _, states = jax.vmap(env.reset)(jax.random.split(key, num_envs))
        return key, states, jnp.zeros((num_envs,))

    def first_call_s(fn, *args):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        return out, time.perf_counter() - t0

    def make_rollout(num_envs: int, T: int):
        def body(carry, k):
            return vstep(jax.random.split(k, num_envs), *carry), None

        @jax.jit
        def rollout(key, states, checksum):
            carry, _ = jax.lax.scan(body, (states, checksum), jax.random.split(key, T))
            return carry

        return rollout

    for num_envs in ns.scan_envs:
        rollout = make_rollout(num_envs, ns.T)
        key, states, checksum = fresh(0, num_envs)
        (states, checksum), compile_s = first_call_s(rollout, key, states, checksum)
        res[f"scan_N{n}_E{num_envs}_compile_s"] = compile_s
        box = [states, checksum, key]

        def scan_calls():
            next_key, sub = jax.random.split(box[2])
            s, c = rollout(sub, box[0], box[1])
            jax.block_until_ready(c)
            box[:] = [s, c, next_key]
            return num_envs * ns.T

        scan_calls()  # warm-up
        steps, dt = common.timed_loop(scan_calls, ns.seconds)
        res[f"scan_N{n}_E{num_envs}_steps_per_s"] = steps / dt

    for num_envs in ns.loop_envs:
        key, states, checksum = fresh(1, num_envs)
        jstep = jax.jit(lambda keys, s, c: vstep(keys, s, c))
        keys = jax.random.split(key, num_envs)
        (states, checksum), compile_s = first_call_s(jstep, keys, states, checksum)
        res[f"loop_N{n}_E{num_envs}_compile_s"] = compile_s
        next_keys = jax.jit(lambda ks: jax.vmap(lambda k: jax.random.split(k)[0])(ks))
        box = [states, checksum, keys]

        def loop_calls(block=50):
            s, c, ks = box
            for _ in range(block):
                ks = next_keys(ks)
                s, c = jstep(ks, s, c)
            jax.block_until_ready(c)
            box[:] = [s, c, ks]
            return block * num_envs

        loop_calls(5)  # warm-up
        steps, dt = common.timed_loop(loop_calls, ns.seconds)
        res[f"loop_N{n}_E{num_envs}_steps_per_s"] = steps / dt


def child(ns) -> None:
    import jax

    res = {"jax_devices": str(jax.devices())}
    for n in ns.agents:
        measure(n, ns, res)
    common.emit(res)


def add_args(p) -> None:
    p.add_argument("--agents", type=int, nargs="+", default=[3, 5])
    p.add_argument("--scan-envs", type=int, nargs="+", default=[1024, 1])
    p.add_argument("--loop-envs", type=int, nargs="+", default=[1024])
    p.add_argument("--T", type=int, default=100, help="steps per compiled rollout (scan length)")
    p.add_argument("--seconds", type=float, default=3.0)


if __name__ == "__main__":
    common.main_for("jaxmarl_mpe_simple_spread", __doc__.splitlines()[0], child, add_args,
                    ["jaxmarl", "jax", "jaxlib", "numpy", "flax", "chex"])
