"""Placeholder `brax.envs.wrappers` (see brax/__init__.py)."""
