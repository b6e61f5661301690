"""Placeholder `brax.envs.wrappers.training` (see brax/__init__.py)."""


class _Unavailable:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("brax stub: install brax to use Brax environments")


class EpisodeWrapper(_Unavailable):
    pass


class AutoResetWrapper(_Unavailable):
    pass
