"""What every benchmark report says about the machine it ran on."""

from __future__ import annotations

import platform

__all__ = ["cpu_model"]


def cpu_model(fallback: str = "") -> str:
    """The CPU's model name from ``/proc/cpuinfo``; else ``platform.processor()``; else
    ``fallback``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or fallback
