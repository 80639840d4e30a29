"""Monitors: scratchpad alignment-faking classifiers, output graders and interrogation checks."""

from aflab.monitors.base import Monitor, get_monitor, monitor_names, register

__all__ = ["Monitor", "get_monitor", "monitor_names", "register"]
