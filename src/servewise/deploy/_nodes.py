"""Where a replica may run: node affinity and tolerations for the GPU (or CPU instance) the plan priced.

The provider is the plan's ``cost.placements[0].offer.provider`` (every placement of an option is one provider and
region). One *required* label per provider, chosen because every node of that kind carries it, managed node group
or autoscaler alike:

    aws, azure, oci   node.kubernetes.io/instance-type In <the priced instance types>
                      (well-known label set by the kubelet from the cloud's instance type; Karpenter users may
                      prefer karpenter.k8s.aws/instance-gpu-name, which only Karpenter-launched nodes carry)
    gcp               cloud.google.com/gke-accelerator = <GKE accelerator name> (what GKE node auto-provisioning
                      selects on); the machine type is a *preferred* term
    anything else     nvidia.com/gpu.product In <NVIDIA GPU feature discovery product name> (GFD runs with the
                      NVIDIA GPU Operator; its value is nvidia-smi's product name with spaces as dashes)
    CPU replica       node.kubernetes.io/instance-type In <the CPU instance type>, on every provider

Tolerations: GPU pods tolerate ``nvidia.com/gpu`` (EKS GPU node groups and GKE taint GPU nodes with that key; a
toleration without its taint is harmless); on Azure also ``sku=gpu`` (the AKS GPU node pool guide's taint).
"""

from __future__ import annotations

from dataclasses import dataclass

from servewise.errors import UsageError

__all__ = [
    "GFD_PRODUCT",
    "GKE_ACCELERATOR",
    "INSTANCE_TYPE_LABEL",
    "NodeTerm",
    "Placement",
    "Toleration",
    "node_placement",
]

INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
GFD_PRODUCT_LABEL = "nvidia.com/gpu.product"

GKE_ACCELERATOR: dict[str, str] = {
    "T4": "nvidia-tesla-t4",
    "V100-SXM2-32GB": "nvidia-tesla-v100",
    "L4": "nvidia-l4",
    "A100-40GB-SXM": "nvidia-tesla-a100",
    "A100-80GB-SXM": "nvidia-a100-80gb",
    "H100-SXM": "nvidia-h100-80gb",
    "H200": "nvidia-h200-141gb",
    "B200": "nvidia-b200",
}
"""GKE accelerator names (GKE "About GPUs" / the Compute Engine accelerator types; the Vertex AI AcceleratorType enum
lists the same families: NVIDIA_L4, NVIDIA_TESLA_A100, NVIDIA_A100_80GB, NVIDIA_H100_80GB, NVIDIA_H200_141GB,
NVIDIA_B200). Only GPUs GCP offers in the catalog need one."""

GFD_PRODUCT: dict[str, str] = {
    "T4": "Tesla-T4",
    "V100-SXM2-32GB": "Tesla-V100-SXM2-32GB",
    "L4": "NVIDIA-L4",
    "A10": "NVIDIA-A10",
    "A10G": "NVIDIA-A10G",
    "L40S": "NVIDIA-L40S",
    "A100-40GB-SXM": "NVIDIA-A100-SXM4-40GB",
    "A100-80GB-SXM": "NVIDIA-A100-SXM4-80GB",
    "A100-80GB-PCIe": "NVIDIA-A100-80GB-PCIe",
    "H100-SXM": "NVIDIA-H100-80GB-HBM3",
    "H100-PCIe": "NVIDIA-H100-PCIe",
    "H100-NVL": "NVIDIA-H100-NVL",
    "H200": "NVIDIA-H200",
    "GH200": "NVIDIA-GH200-480GB",
    "B200": "NVIDIA-B200",
    "B300": "NVIDIA-B300-SXM6-AC",
    "GB200": "NVIDIA-GB200",
}
"""NVIDIA GPU feature discovery ``nvidia.com/gpu.product`` values: nvidia-smi's product name with spaces replaced by
dashes (values as seen in public node listings, e.g. ``NVIDIA-A100-SXM4-80GB``, ``Tesla-T4``, ``NVIDIA-A10G``).
**Assumption** for a given fleet: the product string depends on the board and driver; check with
``kubectl get nodes -L nvidia.com/gpu.product`` and edit the affinity when it differs. This table is also the list of
GPUs deploy can target: every NVIDIA GPU of the catalog (a test keeps the two in step)."""

_INSTANCE_TYPE_PROVIDERS = frozenset({"aws", "azure", "oci"})


@dataclass(frozen=True, slots=True)
class NodeTerm:
    """One ``matchExpressions`` entry: ``key`` In ``values``."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str
    effect: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    required: tuple[NodeTerm, ...]
    """ANDed: all must hold."""
    preferred: tuple[NodeTerm, ...]
    tolerations: tuple[Toleration, ...]
    basis: str
    """One line for the README: which label and why."""


def _machine_type(instance_type: str) -> str:
    """The cloud's own instance type: SkyPilot names a GCP VM with attached GPUs ``n1-standard-4+T4x1``."""
    return instance_type.split("+", 1)[0]


def node_placement(
    *, provider: str, gpu: str, instance_types: tuple[str, ...], cpu_instance: str | None
) -> Placement:
    """Affinity and tolerations for one option (rules in the module docstring)."""
    types = tuple(dict.fromkeys(_machine_type(t) for t in instance_types))
    if cpu_instance is not None:
        return Placement(
            (NodeTerm(INSTANCE_TYPE_LABEL, (cpu_instance,)),),
            (),
            (),
            f"CPU instance type {cpu_instance} ({INSTANCE_TYPE_LABEL})",
        )
    if gpu not in GFD_PRODUCT:
        raise UsageError(
            f"deploy renders NVIDIA GPU and CPU replicas; {gpu} is not an NVIDIA GPU it knows; choose another "
            "option (--option N) or re-plan with --gpu for an NVIDIA GPU"
        )
    gpu_taint = Toleration("nvidia.com/gpu", "Exists", "NoSchedule")
    provider = provider.casefold()
    if provider in _INSTANCE_TYPE_PROVIDERS:
        tolerations: tuple[Toleration, ...] = (gpu_taint,)
        if provider == "azure":
            tolerations += (Toleration("sku", "Equal", "NoSchedule", "gpu"),)
        return Placement(
            (NodeTerm(INSTANCE_TYPE_LABEL, types),),
            (),
            tolerations,
            f"{provider} instance type {', '.join(types)} ({INSTANCE_TYPE_LABEL})",
        )
    if provider == "gcp" and gpu in GKE_ACCELERATOR:
        return Placement(
            (NodeTerm(GKE_ACCELERATOR_LABEL, (GKE_ACCELERATOR[gpu],)),),
            (NodeTerm(INSTANCE_TYPE_LABEL, types),),
            (gpu_taint,),
            f"GKE accelerator {GKE_ACCELERATOR[gpu]} ({GKE_ACCELERATOR_LABEL}), machine type {', '.join(types)} "
            "preferred",
        )
    return Placement(
        (NodeTerm(GFD_PRODUCT_LABEL, (GFD_PRODUCT[gpu],)),),
        (),
        (gpu_taint,),
        f"GPU feature discovery product {GFD_PRODUCT[gpu]} ({GFD_PRODUCT_LABEL}; an assumption, check "
        "`kubectl get nodes -L nvidia.com/gpu.product`)",
    )
