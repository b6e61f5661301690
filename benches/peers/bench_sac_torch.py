"""SAC gradient steps per second in PyTorch, as CleanRL's sac_continuous_action.py does them.

The shapes of `cargo bench --bench sac`: Pendulum-v1's widths (3 observations, 1 action in
[-2, 2]), 256 x 256 ReLU actor and twin critics, batch 256, a replay buffer of 10 000 random
transitions. One gradient step is CleanRL's per-env-step work once learning has started:
the twin critics' update on a sampled batch (target actions from the actor, min of the
target critics minus alpha * log pi), then on every second step two actor updates, each
followed by the temperature's update on a fresh sample, then the Polyak step of both target
critics. The figure is the mean over pairs of steps, so one step carries on average one
actor and one temperature update, like CleanRL's (policy_frequency 2). The actor is CleanRL's
(shared trunk, mean and log-std heads, log-std = -5 + 3.5 (tanh(raw) + 1)).

Figures: step_us, steps_per_s (mean over >= --seconds after 20 warm-up steps).

Run: /tmp/peers-venv/bin/python bench_sac_torch.py --threads 2
"""

import common


def child(ns) -> None:
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(ns.threads)
    torch.manual_seed(0)
    od, ad, hid, bs = 3, 1, 256, 256

    class Actor(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(od, hid)
            self.fc2 = nn.Linear(hid, hid)
            self.fc_mean = nn.Linear(hid, ad)
            self.fc_logstd = nn.Linear(hid, ad)
            self.register_buffer("scale", torch.tensor([2.0]))
            self.register_buffer("bias", torch.tensor([0.0]))

        def get_action(self, x):
            x = F.relu(self.fc2(F.relu(self.fc1(x))))
            mean = self.fc_mean(x)
            log_std = torch.tanh(self.fc_logstd(x))
            log_std = -5 + 0.5 * (2 - (-5)) * (log_std + 1)
            std = log_std.exp()
            normal = torch.distributions.Normal(mean, std)
            x_t = normal.rsample()
            y_t = torch.tanh(x_t)
            action = y_t * self.scale + self.bias
            log_prob = normal.log_prob(x_t)
            log_prob -= torch.log(self.scale * (1 - y_t.pow(2)) + 1e-6)
            return action, log_prob.sum(1, keepdim=True)

    def q():
        return nn.Sequential(nn.Linear(od + ad, hid), nn.ReLU(), nn.Linear(hid, hid), nn.ReLU(), nn.Linear(hid, 1))

    actor, qf1, qf2 = Actor(), q(), q()
    qf1_t, qf2_t = q(), q()
    qf1_t.load_state_dict(qf1.state_dict())
    qf2_t.load_state_dict(qf2.state_dict())
    q_opt = torch.optim.Adam(list(qf1.parameters()) + list(qf2.parameters()), lr=1e-3)
    a_opt = torch.optim.Adam(actor.parameters(), lr=3e-4)
    log_alpha = torch.zeros(1, requires_grad=True)
    al_opt = torch.optim.Adam([log_alpha], lr=1e-3)
    alpha, target_entropy, gamma, tau = log_alpha.exp().item(), -float(ad), 0.99, 0.005

    n = 10_000
    obs = torch.rand(n, od) * 2 - 1
    act = torch.rand(n, ad) * 4 - 2
    rew = -torch.rand(n)
    nobs = torch.rand(n, od) * 2 - 1
    done = torch.zeros(n)
    step = [0]

    def gradient_step():
        nonlocal alpha
        i = torch.randint(0, n, (bs,))
        o, a, r, no, d = obs[i], act[i], rew[i], nobs[i], done[i]
        with torch.no_grad():
            na, nlp = actor.get_action(no)
            x = torch.cat([no, na], 1)
            mn = torch.min(qf1_t(x), qf2_t(x)) - alpha * nlp
            y = r + (1 - d) * gamma * mn.view(-1)
        x = torch.cat([o, a], 1)
        loss = F.mse_loss(qf1(x).view(-1), y) + F.mse_loss(qf2(x).view(-1), y)
        q_opt.zero_grad()
        loss.backward()
        q_opt.step()
        if step[0] % 2 == 0:
            for _ in range(2):
                pi, lp = actor.get_action(o)
                xp = torch.cat([o, pi], 1)
                a_loss = (alpha * lp - torch.min(qf1(xp), qf2(xp))).mean()
                a_opt.zero_grad()
                a_loss.backward()
                a_opt.step()
                with torch.no_grad():
                    _, lp = actor.get_action(o)
                al_loss = (-log_alpha.exp() * (lp + target_entropy)).mean()
                al_opt.zero_grad()
                al_loss.backward()
                al_opt.step()
                alpha = log_alpha.exp().item()
        with torch.no_grad():
            for p, tp in zip(qf1.parameters(), qf1_t.parameters()):
                tp.data.copy_(tau * p.data + (1 - tau) * tp.data)
            for p, tp in zip(qf2.parameters(), qf2_t.parameters()):
                tp.data.copy_(tau * p.data + (1 - tau) * tp.data)
        step[0] += 1

    def steps(block=10):
        for _ in range(block):
            gradient_step()
        return block

    steps(20)
    k, dt = common.timed_loop(steps, ns.seconds)
    common.emit({"torch_threads": torch.get_num_threads(), "batch": bs, "hidden": hid,
                 "step_us": dt / k * 1e6, "steps_per_s": k / dt})


def add_args(p) -> None:
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5.0)


if __name__ == "__main__":
    common.main_for("torch_sac_update", __doc__.splitlines()[0], child, add_args, ["torch", "numpy"])
