"""Playing outside the browser: a model in the terminal (`play`) and a baseline game printed
move by move (`demo`)."""

from cartridge_jax.play import demo, terminal

__all__ = ["demo", "terminal"]
