"""port80: who holds port 80 (and friends) on a Windows fleet, and why."""

__version__ = "0.1.0"
