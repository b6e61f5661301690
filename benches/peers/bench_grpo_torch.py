"""The PyTorch side of `cargo bench --bench grpo`: the same decoder-only transformer (GPT-2
layout: pre-LayerNorm, 2 blocks, width 64, 4 heads, GELU MLP 256, learned positions,
vocabulary 15), the same batch (128 rows: 16 SeqAddition-v0 prompts of up to 9 tokens, 8
completions each, budget 5 tokens) and the same work:

- sampling: one prefill, then one decode step per token with a KV cache, the next token drawn
  from the softmax of the downloaded logits (generated tokens per second);
- a training step: the scoring pass over prompt and completion, log-softmax and gather of the
  completion tokens, a weighted sum, backward, gradient-norm clip, Adam (completion tokens
  trained per second).

Prompts here are random digit strings of the same lengths (left-padded as in taper); the
model is untrained in both, so completions run to the budget in both.

Install: bash benches/peers/setup_venvs.sh main
Run:     /tmp/peers-venv/bin/python benches/peers/bench_grpo_torch.py [--threads 2]
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, D, H, L, FF = 15, 64, 4, 2, 256
P_LEN, MAX_NEW, ROWS = 9, 5, 128
CTX = P_LEN + MAX_NEW


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.fc, self.out = nn.Linear(D, FF), nn.Linear(FF, D)

    def forward(self, x, mask, past=None):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        heads = lambda z: z.view(b, t, H, D // H).transpose(1, 2)
        q, k, v = heads(q), heads(k), heads(v)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D // H) + mask
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, D)
        x = x + self.proj(y)
        x = x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))
        return x, (k, v)


class Gpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.pos = nn.Embedding(V, D), nn.Embedding(CTX, D)
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.lnf, self.head = nn.LayerNorm(D), nn.Linear(D, V)

    def forward(self, tokens, pos, mask, past=None):
        x = self.tok(tokens) + self.pos(pos)
        cache = []
        for i, blk in enumerate(self.blocks):
            x, kv = blk(x, mask, None if past is None else past[i])
            cache.append(kv)
        return self.head(self.lnf(x)), cache


def attn_mask(key_mask, tq):
    """Additive mask [b, 1, tq, tk]: a query sees real keys at or before its slot."""
    b, tk = key_mask.shape
    slots = torch.arange(tk - tq, tk).view(1, 1, tq, 1)
    keys = torch.arange(tk).view(1, 1, 1, tk)
    ok = (keys <= slots) & (key_mask.view(b, 1, 1, tk) > 0)
    return torch.where(ok, 0.0, -1e9)


def batch(gen):
    lens = torch.randint(5, P_LEN + 1, (16,), generator=gen).repeat_interleave(8)
    tok = torch.zeros(ROWS, P_LEN, dtype=torch.long)
    km = torch.zeros(ROWS, P_LEN)
    for r in range(ROWS):
        n = int(lens[r])
        tok[r, P_LEN - n:] = torch.randint(5, 15, (n,), generator=gen)
        km[r, P_LEN - n:] = 1
    return tok, km


@torch.no_grad()
def sample(model, tok, km, gen):
    pos = (km.cumsum(1) - 1).clamp(min=0).long()
    logits, cache = model(tok, pos, attn_mask(km, P_LEN))
    nxt_pos = km.sum(1).long()
    out = []
    for step in range(MAX_NEW):
        probs = logits[:, -1].softmax(-1)
        nxt = torch.multinomial(probs, 1, generator=gen)
        out.append(nxt)
        if step + 1 == MAX_NEW:
            break
        km = torch.cat([km, torch.ones(ROWS, 1)], 1)
        logits, cache = model(nxt, nxt_pos.view(-1, 1), attn_mask(km, 1), cache)
        nxt_pos = nxt_pos + 1
    return torch.cat(out, 1)


def train_step(model, opt, tok, km, comp):
    seq = torch.cat([tok, comp], 1)[:, :-1]
    m = torch.cat([km, torch.ones_like(comp, dtype=torch.float)], 1)[:, :-1]
    pos = (m.cumsum(1) - 1).clamp(min=0).long()
    logits, _ = model(seq, pos, attn_mask(m, seq.shape[1]))
    lp = logits[:, P_LEN - 1:].log_softmax(-1).gather(2, comp.unsqueeze(-1)).squeeze(-1)
    loss = lp.sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=30)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = Gpt()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tok, km = batch(gen)
    comp = sample(model, tok, km, gen)
    res = {}
    for name, fn, units in [
        ("sample_kv_cache", lambda: sample(model, tok, km, gen), ROWS * MAX_NEW),
        ("train_step", lambda: train_step(model, opt, tok, km, comp), ROWS * MAX_NEW),
    ]:
        for _ in range(5):
            fn()
        times = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        res[name] = {"median_s": med, "tokens_per_s": units / med}
    print(json.dumps({"torch": torch.__version__, "threads": a.threads, "rows": ROWS, **res}, indent=1))


if __name__ == "__main__":
    main()
