"""Python client for the VPSBG support API."""

from vpsbg_support._version import __version__

__all__ = ["__version__"]
