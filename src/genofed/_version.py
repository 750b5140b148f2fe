"""The installed version of genofed."""

from importlib import metadata

__version__ = metadata.version("genofed")
