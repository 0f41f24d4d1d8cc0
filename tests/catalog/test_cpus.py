"""CPU specs: packaged rows, their derived bandwidth share, value rules, and the database round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from servewise.catalog import DataKind, load_packaged, open_catalog, parse_csv
from servewise.errors import CatalogError

HEADER = (
    "provider,instance_type,cpu_model,vcpus,physical_cores,socket_cores,socket_memory_bw_gbps,memory_bw_gbps,"
    "bf16_tflops,int8_tops,isa,source"
)


def test_every_cpu_only_offer_has_a_spec_with_its_share_of_the_socket():
    data = load_packaged(benchmarks=False)
    cpus = {(c.provider, c.instance_type): c for c in data.cpus}
    cpu_offers = [o for o in data.offers if o.gpu is None]
    assert cpu_offers and all((o.provider, o.instance_type) in cpus for o in cpu_offers)
    c7i = cpus[("aws", "c7i.2xlarge")]
    # 8 DDR5-4800 channels x 8 bytes = 307.2 GB/s per socket; 4 of its 48 cores -> 307.2 x 4 / 48 = 25.6 GB/s
    assert c7i.socket_memory_bw_gbps == pytest.approx(8 * 4.8 * 8)
    assert c7i.memory_bw_gbps == pytest.approx(25.6)
    # 4 cores x 2.4 GHz x 1024 bf16 FLOP/cycle = 9.8304 TFLOP/s; int8 twice that
    assert c7i.bf16_tflops == pytest.approx(9.8304) and c7i.int8_tops == pytest.approx(19.6608)
    for cpu in data.cpus:
        assert cpu.vcpus == 2 * cpu.physical_cores  # x86: two hyper-threads per core
        share = cpu.socket_memory_bw_gbps * cpu.physical_cores / cpu.socket_cores
        assert cpu.memory_bw_gbps == pytest.approx(share)
        assert cpu.source and cpu.as_of is not None
        assert "ASSUMPTION" in cpu.notes and "GUESS" in cpu.notes  # derived and recalled cells are labelled
    assert data.snapshot().cpus == data.cpus


def test_cpu_rows_break_rules_with_file_line_and_column():
    more_cores = f"{HEADER}\naws,x,X,8,64,48,300,25,1,2,avx512,s\n"
    with pytest.raises(
        CatalogError, match=r"cpus.csv:2: column physical_cores: got '64', must be <= socket_cores"
    ):
        parse_csv(DataKind.cpus, more_cores, path="cpus.csv")
    no_bandwidth = f"{HEADER}\naws,x,X,8,4,48,300,0,1,2,avx512,s\n"
    with pytest.raises(CatalogError, match=r"column memory_bw_gbps: got '0', must be > 0"):
        parse_csv(DataKind.cpus, no_bandwidth, path="cpus.csv")
    duplicate = f"{HEADER}\naws,x,X,8,4,48,300,25,1,2,a,s\naws,x,X,8,4,48,300,25,1,2,a,s\n"
    with pytest.raises(CatalogError, match="duplicate provider/instance_type"):
        parse_csv(DataKind.cpus, duplicate, path="cpus.csv")


def test_database_holds_the_packaged_cpus_and_a_user_import_replaces_one(sqlite_url: str, tmp_path: Path):
    packaged = load_packaged(benchmarks=False).cpus
    file = tmp_path / "cpus.csv"
    # a user measured their own c7i.2xlarge: 40 GB/s (more than the 25.6 GB/s pro-rata share)
    file.write_text(
        f"{HEADER}\naws,c7i.2xlarge,Intel Xeon 8488C,8,4,48,307.2,40,9.8304,19.6608,amx,my-stream-run\n"
    )
    with open_catalog(sqlite_url) as catalog:
        assert catalog.cpus() == list(packaged)
        assert catalog.snapshot().cpus == packaged
        assert catalog.import_csv("cpus", file) == 1
        mine = next(c for c in catalog.cpus(provider="AWS") if c.instance_type == "c7i.2xlarge")
        assert mine.memory_bw_gbps == 40 and mine.source == "my-stream-run"
        assert len(catalog.cpus()) == len(packaged)
