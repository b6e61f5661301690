"""Placeholder `brax.envs` (see brax/__init__.py)."""


def get_environment(*args, **kwargs):
    raise NotImplementedError("brax stub: install brax to use Brax environments")
