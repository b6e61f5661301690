"""Placeholder for navix: PureJaxRL's wrappers.py imports it at module level, but the
CartPole (gymnax) path of ppo.py never uses it."""


def make(*args, **kwargs):
    raise NotImplementedError("navix stub: install navix to use Navix environments")
