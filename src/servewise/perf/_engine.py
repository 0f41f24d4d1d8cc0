"""Engine settings of a vLLM replica, with vLLM's own defaults.

Defaults follow vLLM's ``EngineArgs.get_batch_defaults`` for the OpenAI API server (vllm/engine/arg_utils.py):
devices with ≥ 70 GiB that are not A100s get ``max_num_batched_tokens`` 8192 and ``max_num_seqs`` 1024, every other
device 2048 and 256. ``gpu_memory_utilization`` 0.9 and 16-token KV blocks are vLLM's documented defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from servewise.catalog import Accelerator

__all__ = ["EngineSettings", "default_engine_settings"]

_GIB = 1024**3
_LARGE_DEVICE_BYTES = 70 * _GIB


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """The knobs the planner sets and the deploy stage writes as vLLM arguments."""

    max_num_seqs: int
    max_num_batched_tokens: int
    gpu_memory_utilization: float = 0.9
    block_size_tokens: int = 16
    kv_cache_bytes_per_element: int = 2
    """2 for a 16-bit KV cache (vLLM's ``--kv-cache-dtype auto``), 1 for fp8."""


def default_engine_settings(gpu: Accelerator) -> EngineSettings:
    """What ``vllm serve`` would pick on ``gpu`` when the user sets nothing."""
    large = gpu.memory_gb * 1e9 >= _LARGE_DEVICE_BYTES and not gpu.name.upper().startswith("A100")
    if large:
        return EngineSettings(max_num_seqs=1024, max_num_batched_tokens=8192)
    return EngineSettings(max_num_seqs=256, max_num_batched_tokens=2048)
