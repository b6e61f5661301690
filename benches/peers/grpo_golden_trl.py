"""Golden values of GRPO's per-token loss and its aggregations, from TRL's own code.

Calls `trl.GRPOTrainer._compute_loss` (TRL 0.24.0) on fixed tensors: a stand-in trainer holds
only the attributes that method reads, and its per-token log-probabilities come from a fixed
leaf tensor instead of a model, so the loss and its gradient with respect to each token's
log-probability are TRL's, bit for bit. Writes crates/taper-algos/tests/data/trl_grpo_golden.json,
which `crates/taper-algos/tests/algos/trl_golden.rs` replays.

Install: bash benches/peers/setup_venvs.sh main, then /tmp/peers-venv/bin/pip install trl==0.24.0
Run:     /tmp/peers-venv/bin/python benches/peers/grpo_golden_trl.py
"""
import json
import os
import types
from collections import defaultdict

import torch
import trl
from trl import import_utils as trl_import_utils

# Shim: with transformers 5.x, the availability checks TRL 0.24.0 imports return a tuple
# (available, version), which is always true, so TRL then imports optional packages that are
# not installed (mergekit, llm_blender, ...). Keep the boolean. Nothing else is changed.
for _name in dir(trl_import_utils):
    _v = getattr(trl_import_utils, _name)
    if _name.startswith("_") and _name.endswith("_available") and isinstance(_v, tuple):
        setattr(trl_import_utils, _name, bool(_v[0]))
from trl import GRPOTrainer  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "taper-algos", "tests", "data", "trl_grpo_golden.json")


def case(loss_type, eps_low, eps_high, beta, seed):
    g = torch.Generator().manual_seed(seed)
    b, t = 6, 5
    logp = (-torch.rand(b, t, generator=g, dtype=torch.float64) * 3).float()
    # Old log-probabilities within ±0.5 of the new: ratios on both sides of both clip bounds.
    old = logp + (torch.rand(b, t, generator=g) - 0.5)
    ref = logp + (torch.rand(b, t, generator=g) - 0.5) * 0.4
    adv = torch.randn(b, generator=g)
    lengths = torch.tensor([5, 3, 1, 4, 5, 2])
    mask = (torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)).float()
    leaf = logp.clone().requires_grad_(True)

    stub = types.SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (leaf, torch.ones(b, t)),
        top_entropy_quantile=1.0,
        beta=beta,
        importance_sampling_level="token",
        epsilon_low=eps_low,
        epsilon_high=eps_high,
        args=types.SimpleNamespace(delta=None),
        use_vllm=False,
        loss_type=loss_type,
        current_gradient_accumulation_steps=1,
        max_completion_length=8,
        accelerator=types.SimpleNamespace(num_processes=1, gather=lambda x: x),
        model=types.SimpleNamespace(training=True),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
    )
    inputs = {
        "prompt_ids": torch.zeros(b, 1, dtype=torch.long),
        "prompt_mask": torch.ones(b, 1),
        "completion_ids": torch.zeros(b, t, dtype=torch.long),
        "completion_mask": mask,
        "advantages": adv,
        "old_per_token_logps": old,
        "ref_per_token_logps": ref,
        # DAPO's normalizer: the valid tokens of the accumulated batch (one process).
        "num_items_in_batch": mask.sum(),
    }
    loss = GRPOTrainer._compute_loss(stub, None, inputs)
    loss.backward()
    return {
        "loss_type": loss_type,
        "eps_low": eps_low,
        "eps_high": eps_high,
        "beta": beta,
        "max_completion_length": 8,
        "t": t,
        "logp": logp.flatten().tolist(),
        "old_logp": old.flatten().tolist(),
        "ref_logp": ref.flatten().tolist(),
        "adv": adv.tolist(),
        "mask": mask.flatten().tolist(),
        "loss": loss.item(),
        "grad": leaf.grad.flatten().tolist(),
    }


def main():
    cases = []
    for i, lt in enumerate(["grpo", "bnpo", "dr_grpo", "dapo"]):
        cases.append(case(lt, 0.2, 0.2, 0.0, 10 + i))
        cases.append(case(lt, 0.2, 0.28, 0.04, 20 + i))
    with open(OUT, "w") as f:
        json.dump({"trl_version": trl.__version__, "torch_version": torch.__version__, "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} cases from TRL {trl.__version__} to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
