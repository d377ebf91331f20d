"""embench: how a model really runs on each device of a lab."""

__version__ = "0.1.0"
__all__ = ["__version__"]
