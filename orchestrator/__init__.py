"""ruche: an orchestrator for small ethical hosting collectives."""

__version__ = "0.1.0"
