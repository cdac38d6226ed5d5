"""AegisTrader's delivery toolkit: the logic behind ``noxfile.py`` and ``tasks.py``."""

__version__ = "0.1.0"
