"""aflab: a testbed for training-time mitigations of alignment faking in RL."""

__version__ = "0.1.0"
