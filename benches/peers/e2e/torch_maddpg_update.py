"""PyTorch reference for one MADDPG update at taper's default (tuned) shapes; our own script.

Usage: python e2e/torch_maddpg_update.py THREADS [TIMED_UPDATES=1000]      (main venv)
3 agents; shared actor 18 -> 128 -> 128 -> 5 (ReLU); shared centralised critic
69 -> 128 -> 128 -> 1 (tanh) over all observations and one-hot actions, each ego's row in
cyclic agent order starting at itself; batch 256 transitions = 768 critic/actor rows drawn
from a 100k random buffer; straight-through Gumbel-softmax actions; MSE TD loss (gamma 0.95);
grad-norm clip 0.5; Adam lr 1e-3; logit regulariser 1e-3; Polyak tau 0.01.
Prints the mean microseconds per update over the timed updates, after 200 warm-up updates.
"""
import copy
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

threads = int(sys.argv[1])
timed_updates = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
torch.set_num_threads(threads)
torch.manual_seed(0)

N, OBS, ACT, BATCH, HIDDEN, CAPACITY = 3, 18, 5, 256, 128, 100_000
GAMMA, TAU, CLIP, LOGIT_REG = 0.95, 0.01, 0.5, 1e-3

actor = nn.Sequential(nn.Linear(OBS, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                      nn.Linear(HIDDEN, ACT))
critic = nn.Sequential(nn.Linear(N * OBS + N * ACT, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN),
                       nn.Tanh(), nn.Linear(HIDDEN, 1))
target_actor, target_critic = copy.deepcopy(actor), copy.deepcopy(critic)
for p in [*target_actor.parameters(), *target_critic.parameters()]:
    p.requires_grad_(False)
actor_opt = torch.optim.Adam(actor.parameters(), 1e-3)
critic_opt = torch.optim.Adam(critic.parameters(), 1e-3)

# replay buffer of random transitions
obs_buf = torch.randn(CAPACITY, N, OBS)
next_obs_buf = torch.randn(CAPACITY, N, OBS)
act_buf = F.one_hot(torch.randint(0, ACT, (CAPACITY, N)), ACT).float()
rew_buf = torch.randn(CAPACITY, N)
done_buf = torch.zeros(CAPACITY)

ORDER = torch.tensor([[(ego + k) % N for k in range(N)] for ego in range(N)])  # ego's critic order


def critic_rows(obs, act):
    """[B, N, OBS], [B, N, ACT] -> [N * B, N * OBS + N * ACT]: all of ego 0's rows, then ego 1's, ..."""
    return torch.cat([torch.cat([obs[:, ORDER[e]].reshape(BATCH, -1), act[:, ORDER[e]].reshape(BATCH, -1)], 1)
                      for e in range(N)], 0)


def update():
    idx = torch.randint(0, CAPACITY, (BATCH,))
    obs, next_obs, act = obs_buf[idx], next_obs_buf[idx], act_buf[idx]
    rew, done = rew_buf[idx], done_buf[idx]
    with torch.no_grad():
        next_act = F.gumbel_softmax(target_actor(next_obs.reshape(BATCH * N, OBS)), tau=1.0, hard=True)
        next_q = target_critic(critic_rows(next_obs, next_act.reshape(BATCH, N, ACT))).squeeze(1)
        target = rew.t().reshape(-1) + GAMMA * (1 - done).repeat(N) * next_q

    x = critic_rows(obs, act)
    critic_loss = F.mse_loss(critic(x).squeeze(1), target)
    critic_opt.zero_grad(set_to_none=True)
    critic_loss.backward()
    nn.utils.clip_grad_norm_(critic.parameters(), CLIP)
    critic_opt.step()

    logits = actor(x[:, :OBS])  # the ego's own observation is the first slot
    own_act = F.gumbel_softmax(logits, tau=1.0, hard=True)
    x_actor = torch.cat([x[:, :N * OBS], own_act, x[:, N * OBS + ACT:]], 1)
    actor_loss = -critic(x_actor).mean() + LOGIT_REG * (logits ** 2).mean()
    actor_opt.zero_grad(set_to_none=True)
    actor_loss.backward()
    nn.utils.clip_grad_norm_(actor.parameters(), CLIP)
    actor_opt.step()

    with torch.no_grad():
        for target_net, net in ((target_actor, actor), (target_critic, critic)):
            for tp, p in zip(target_net.parameters(), net.parameters()):
                tp.mul_(1 - TAU).add_(p, alpha=TAU)


for _ in range(200):
    update()
t0 = time.perf_counter()
for _ in range(timed_updates):
    update()
dt = time.perf_counter() - t0
print("RESULT " + json.dumps({"threads": torch.get_num_threads(), "updates": timed_updates,
                              "us_per_update": dt / timed_updates * 1e6, "torch": torch.__version__}),
      flush=True)
