"""Placeholder for brax: PureJaxRL's wrappers.py imports it at module level, but the
CartPole (gymnax) path of ppo.py never uses it. Nothing here works; it only imports."""
