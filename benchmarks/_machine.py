"""What every benchmark report says about the machine it ran on."""

from __future__ import annotations

import os
import platform

__all__ = ["cpu_model", "describe"]


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


def _ram_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def describe() -> str:
    """One line: cores, CPU model, RAM, OS, Python and Ray versions."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ram = _ram_gib()
    try:
        from importlib.metadata import version

        ray_version = version("ray")
    except Exception:  # noqa: BLE001 - a report line, not a requirement
        ray_version = "not installed"
    parts = [f"{cores} cores", cpu_model("unknown CPU")]
    if ram is not None:
        parts.append(f"{ram:.0f} GiB RAM")
    parts += [platform.system() or "unknown OS", f"Python {platform.python_version()}",
              f"Ray {ray_version}"]
    return ", ".join(parts)
