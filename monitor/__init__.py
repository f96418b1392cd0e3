"""Likeness Monitor: finds clips of protected characters and actors by what they show."""

__all__ = ["__version__"]

__version__ = "0.1.0"
