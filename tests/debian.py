"""Installing a Debian package a test needs (Chromium for the browser tests, Prometheus for the PromQL test) the
way a new user would: ``apt-get install`` from the distribution's registry, once per machine."""

from __future__ import annotations

import os
import shutil
import subprocess

__all__ = ["APT_TIMEOUT_S", "apt_install"]

APT_TIMEOUT_S = 900


def apt_install(package: str) -> str | None:
    """Install Debian's ``package`` with apt-get; the reason it could not, or ``None`` when it did."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return f"not running as root, so `apt-get install {package}` is not possible"
    apt = shutil.which("apt-get")
    if apt is None:
        return "apt-get is not available (not a Debian/Ubuntu system)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "--no-install-recommends", package]
    failure = ""
    for step in ([install], [[apt, "update"], install]):  # the package lists may be missing or stale
        try:
            for command in step:
                subprocess.run(
                    command, check=True, capture_output=True, text=True, timeout=APT_TIMEOUT_S, env=env
                )
            return None
        except subprocess.TimeoutExpired:
            return f"`{' '.join(install)}` did not finish within {APT_TIMEOUT_S} s"
        except subprocess.CalledProcessError as err:
            tail = (err.stderr or err.stdout or "").strip().splitlines()[-1:] or ["(no output)"]
            failure = f"`{' '.join(err.cmd)}` failed with exit code {err.returncode}: {tail[0]}"
    return failure
