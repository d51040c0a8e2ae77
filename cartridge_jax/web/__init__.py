"""The static web site: serving it with a run's models (`website`), and shipping a run's model
into it with a model card (`ship`)."""

from cartridge_jax.web import ship, website

__all__ = ["ship", "website"]
