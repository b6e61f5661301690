"""Per-update cost anchor: MLP 18 -> 64 -> 64 -> 5 (tanh), batch 2048, forward + backward + Adam step, torch CPU.

The shape is an MPE simple_spread policy (18 observations, 5 discrete actions) with
CleanRL/SB3-sized hidden layers. One update is
``opt.zero_grad(); cross_entropy(model(x), y).backward(); opt.step()`` on one fixed random
batch (x: 2048x18 float32, y: labels in 0..4), Adam(lr=3e-4), torch.set_num_threads(--threads).
Figures:
  update_us, updates_per_s  mean over >= --seconds after 100 warm-up updates
  fwd_nograd_b2048_us       forward only, under torch.no_grad(), batch 2048
  fwd_nograd_b1_us          the same with batch 1 (acting latency), each over --seconds / 2

Run: /tmp/peers-venv/bin/python bench_mlp_update.py
"""

import common


def child(ns) -> None:
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(ns.threads)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(18, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 5))
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    x = torch.randn(ns.batch, 18)
    y = torch.randint(0, 5, (ns.batch,))

    def updates(block=50):
        for _ in range(block):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        return block

    updates(100)
    n, dt = common.timed_loop(updates, ns.seconds)
    res = {"torch_threads": torch.get_num_threads(), "batch": ns.batch,
           "update_us": dt / n * 1e6, "updates_per_s": n / dt}

    for b in (ns.batch, 1):
        xb = torch.randn(b, 18)

        def forwards(block=200):
            with torch.no_grad():
                for _ in range(block):
                    model(xb)
            return block

        forwards(100)
        n, dt = common.timed_loop(forwards, ns.seconds / 2)
        res[f"fwd_nograd_b{b}_us"] = dt / n * 1e6
    common.emit(res)


def add_args(p) -> None:
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--seconds", type=float, default=3.0)


if __name__ == "__main__":
    common.main_for("torch_mlp_update", __doc__.splitlines()[0], child, add_args, ["torch", "numpy"])
