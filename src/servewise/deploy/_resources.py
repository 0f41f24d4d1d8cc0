"""CPU, memory and GPU of one replica's pod, and the namespace quota that bounds the whole deployment.

GPU replica (tp GPUs, vLLM V1 processes: an API server, an engine core, one worker per GPU):

    nvidia.com/gpu   = tp
    cpu              = tp + 2 cores                 one busy core per process (each spins its own loop)
    memory           = checkpoint + runtime + shm
      checkpoint     = weights_gb × tp × ckpt_bytes / served_bytes
                       weights as served (``perf.memory.weights_gb`` is per GPU), scaled back to the checkpoint
                       read: a 16-bit checkpoint quantised to fp8 at load reads twice the served bytes. vLLM reads
                       safetensors through mmap, so the checkpoint's pages sit in the pod's memory while loading
      runtime        = 2 GB × (tp + 2)              Python, torch and CUDA host state per process (assumption:
                                                     typical RSS of a vLLM process before weights, 1.5-2.5 GB)
      shm            = 2 GiB                        /dev/shm (a memory-backed emptyDir) for the processes'
                                                     shared-memory queues and NCCL; counted in the pod's memory

CPU replica (one per instance, the plan's unit): cpu = vCPUs − 1 (one left for the kubelet, system daemons and
DaemonSets: a node's allocatable CPU is below its capacity); memory = ``perf.memory.budget_gb`` (the host RAM share
the CPU memory plan gave vLLM: weights + activations + reserve + KV cache); ``VLLM_CPU_KVCACHE_SPACE`` =
⌊kv_cache_gb in GiB⌋. Requests equal limits (Guaranteed QoS: the pod is evicted last under node pressure).

Quota (ResourceQuota of the namespace), with one surge replica because a rolling update starts the new pod before
it stops an old one (Deployment ``maxSurge: 1``, ``maxUnavailable: 0``):

    requests.nvidia.com/gpu = (maxReplicas + 1) × tp
    requests.cpu / limits.cpu, requests.memory / limits.memory = (maxReplicas + 1) × the pod's
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from servewise.errors import UsageError

__all__ = [
    "RUNTIME_GB_PER_PROCESS",
    "SHM_GIB",
    "SURGE_REPLICAS",
    "PodResources",
    "Quota",
    "cpu_pod_resources",
    "gpu_pod_resources",
    "quota",
]

_GIB = 2**30
_MIB = 2**20
_GB = 1e9
RUNTIME_GB_PER_PROCESS = 2.0
"""Host memory per vLLM process before weights (assumption; see the module docstring)."""
SHM_GIB = 2
SURGE_REPLICAS = 1
_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int4": 0.5 + 2 / 128, "fp4": 0.5 + 1 / 16}
"""Bytes per weight, as ``perf._precision.BYTES_PER_PARAM``."""


@dataclass(frozen=True, slots=True)
class PodResources:
    cpu_millicores: int
    memory_mib: int
    gpus: int
    shm_gib: int
    kv_cache_space_gib: int | None
    """``VLLM_CPU_KVCACHE_SPACE`` for a CPU replica; None for a GPU one."""
    checkpoint_gb: float
    """Bytes of the checkpoint read at start (also what the model cache volume must hold)."""
    basis: str


@dataclass(frozen=True, slots=True)
class Quota:
    gpus: int
    cpu_millicores: int
    memory_mib: int
    replicas_counted: int


def gpu_pod_resources(
    *, tp: int, weights_gb_per_gpu: float, served_precision: str, checkpoint_precision: str
) -> PodResources:
    """A GPU replica's pod (rules in the module docstring)."""
    served = _BYTES.get(served_precision, 2.0)
    checkpoint_gb = weights_gb_per_gpu * tp * _BYTES.get(checkpoint_precision, served) / served
    processes = tp + 2
    memory_bytes = (checkpoint_gb + RUNTIME_GB_PER_PROCESS * processes) * _GB + SHM_GIB * _GIB
    return PodResources(
        cpu_millicores=1000 * processes,
        memory_mib=math.ceil(memory_bytes / _MIB),
        gpus=tp,
        shm_gib=SHM_GIB,
        kv_cache_space_gib=None,
        checkpoint_gb=checkpoint_gb,
        basis=(
            f"{processes} cores (1 per vLLM process); memory = checkpoint {checkpoint_gb:.1f} GB + runtime "
            f"{RUNTIME_GB_PER_PROCESS:g} GB x {processes} processes + {SHM_GIB} GiB /dev/shm"
        ),
    )


def cpu_pod_resources(*, vcpus: int, budget_gb: float, kv_cache_gb: float, weights_gb: float) -> PodResources:
    """A CPU replica's pod: the instance less one vCPU, the memory the plan's CPU memory plan used."""
    kv_gib = math.floor(kv_cache_gb * _GB / _GIB)
    if kv_gib < 1:
        raise UsageError(
            f"the plan leaves {kv_cache_gb:.2f} GB for the KV cache, less than the 1 GiB vLLM's CPU backend "
            "takes as its smallest VLLM_CPU_KVCACHE_SPACE; choose a larger instance (another --option)"
        )
    return PodResources(
        cpu_millicores=1000 * max(1, vcpus - 1),
        memory_mib=math.ceil(budget_gb * _GB / _MIB),
        gpus=0,
        shm_gib=SHM_GIB,
        kv_cache_space_gib=kv_gib,
        checkpoint_gb=weights_gb,
        basis=(
            f"{max(1, vcpus - 1)} of {vcpus} vCPUs (one left for the node's daemons); memory = the plan's host "
            f"memory budget {budget_gb:.1f} GB; KV cache {kv_gib} GiB (VLLM_CPU_KVCACHE_SPACE)"
        ),
    )


def quota(pod: PodResources, max_replicas: int) -> Quota:
    """The namespace quota for ``max_replicas`` plus the rolling-update surge."""
    counted = max_replicas + SURGE_REPLICAS
    return Quota(
        gpus=pod.gpus * counted,
        cpu_millicores=pod.cpu_millicores * counted,
        memory_mib=pod.memory_mib * counted,
        replicas_counted=counted,
    )
