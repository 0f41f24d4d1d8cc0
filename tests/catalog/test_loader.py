"""Pure CSV parsing and packaged data, no database."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import servewise.catalog as catalog_pkg
from servewise.catalog import DataKind, load_packaged, packaged_fingerprint, parse_csv
from servewise.catalog._loader import apply_patch, read_packaged_rows, to_record
from servewise.errors import CatalogError

DATA = Path(catalog_pkg.__file__).parent / "data"


def _csv_rows(*rels: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for rel in rels:
        path = DATA / rel
        if path.is_file():
            with path.open(encoding="utf-8") as handle:
                rows += list(csv.DictReader(handle))
    return rows


def test_exports_are_sorted_and_exist() -> None:
    def ruff_order(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert catalog_pkg.__all__ == sorted(catalog_pkg.__all__, key=ruff_order)
    assert all(hasattr(catalog_pkg, name) for name in catalog_pkg.__all__)


def test_empty_cells_become_none_or_empty_text() -> None:
    text = (
        "provider,region,instance_type,gpu,gpu_count,vcpus,memory_gb,price_per_hour_usd,spot_price_per_hour_usd,"
        "price_per_gpu_hour_usd,source,as_of,notes\n"
        "aws,us-east-1,c7i.2xlarge,,0,8,16,0.357,,,src,,\n"
    )
    (values,) = parse_csv(DataKind.offers, text, path="offers.csv")
    assert values["gpu"] is None
    assert values["spot_price_per_hour_usd"] is None
    assert values["as_of"] is None
    assert values["notes"] == ""
    assert "price_per_gpu_hour_usd" not in values  # derived column, accepted and dropped
    offer = to_record(DataKind.offers, values)
    assert offer.gpu is None and offer.price_per_hour_usd == pytest.approx(0.357)


def test_free_text_as_of_moves_to_notes() -> None:
    (price,) = [p for p in load_packaged(benchmarks=False).api_prices if p.model == "gpt-4o"]
    assert price.as_of is None
    assert "litellm==1.109.1" in price.notes


def test_iso_as_of_and_booleans_parse() -> None:
    use_case = load_packaged(benchmarks=False).use_cases[0]
    assert isinstance(use_case.as_of, date)
    rows = read_packaged_rows(DataKind.benchmarks)
    assert {r["precision_inferred"] for r in rows} == {True, False}
    assert all(isinstance(r["parallelism_suspect"], bool) for r in rows)


def test_blank_attention_dp_is_null_in_rows_and_one_in_records() -> None:
    rows = read_packaged_rows(DataKind.benchmarks)
    blank = [r for r in rows if r["attention_dp"] is None]
    assert len(blank) == 463
    assert to_record(DataKind.benchmarks, blank[0]).attention_dp == 1


def test_errors_name_file_line_and_column() -> None:
    text = (
        "name,description,prompt_tokens,output_tokens,ttft_p95_ms,itl_p95_ms,e2e_p95_ms,min_params_b,source\n"
    )
    text += "ok,d,1,1,1,1,1,1,s\nbad,d,many,1,1,1,1,1,s\n"
    with pytest.raises(CatalogError, match=r"mine\.csv:3: column prompt_tokens: expected a whole number"):
        parse_csv(DataKind.use_cases, text, path="mine.csv")


def test_unknown_and_missing_columns_are_rejected() -> None:
    with pytest.raises(CatalogError, match=r"unknown column.*colour.*valid: kind, alias"):
        parse_csv(DataKind.aliases, "kind,alias,target,source,colour\n", path="a.csv")
    with pytest.raises(CatalogError, match=r"missing column.*target"):
        parse_csv(DataKind.aliases, "kind,alias,source\n", path="a.csv")


def test_duplicate_keys_and_bad_alias_kind_are_rejected() -> None:
    text = "kind,alias,target,source\ngpu,x,H200,s\ngpu,x,H200,s\n"
    with pytest.raises(CatalogError, match="duplicate kind/alias"):
        parse_csv(DataKind.aliases, text, path="a.csv")
    with pytest.raises(CatalogError, match=r"a\.csv:2: column kind: expected gpu or model"):
        parse_csv(DataKind.aliases, "kind,alias,target,source\ntpu,x,H200,s\n", path="a.csv")


def test_source_is_required() -> None:
    with pytest.raises(CatalogError, match=r"a\.csv:2: column source: a value is required"):
        parse_csv(DataKind.aliases, "kind,alias,target,source\ngpu,x,H200,\n", path="a.csv")


def test_packaged_counts_match_the_csv_files() -> None:
    data = load_packaged()
    gpu_names = {r["name"] for r in _csv_rows("catalog/gpus.csv", "additions/gpus.csv")}
    assert len(data.accelerators) == len(gpu_names)
    assert {"B300", "GB200"} <= {a.name for a in data.accelerators}
    assert len(data.models) == len(_csv_rows("catalog/models.csv", "additions/models.csv"))
    assert len(data.offers) == len(_csv_rows("catalog/cloud_prices.csv"))
    assert len(data.api_prices) == len(_csv_rows("catalog/api_prices.csv"))
    assert len(data.benchmarks) == len(_csv_rows("benchmarks/calibration.csv")) == 2632
    assert len(data.use_cases) == 9
    assert len(data.aliases) == len(_csv_rows("additions/aliases.csv"))
    snapshot = data.snapshot()
    assert snapshot.accelerators == data.accelerators and snapshot.use_cases == data.use_cases


def test_added_gpus_cite_their_source_and_leave_unknowns_empty() -> None:
    by_name = {a.name: a for a in load_packaged(benchmarks=False).accelerators}
    b300, gb200 = by_name["B300"], by_name["GB200"]
    assert "b300_sxm.yaml" in b300.source and "gb200.yaml" in gb200.source
    assert b300.intra_node_bw_gbps == 1800  # 900 GB/s per direction, doubled
    assert b300.fp16_tflops is None and b300.launch_year is None and b300.list_price_usd is None


def test_fingerprint_is_stable_hex() -> None:
    assert packaged_fingerprint() == packaged_fingerprint()
    assert len(packaged_fingerprint()) == 64


def _csv_of(kind: DataKind, record: Any, **overrides: object) -> str:
    """A one-row CSV of ``kind`` holding ``record``'s fields, some replaced (``None`` → empty cell)."""
    values = {**dataclasses.asdict(record), **overrides}
    cells = ["" if v is None else v.isoformat() if isinstance(v, date) else str(v) for v in values.values()]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([list(values), cells])
    return out.getvalue()


def _first(kind: DataKind) -> Any:
    return to_record(kind, read_packaged_rows(kind)[0])


def test_as_of_text_goes_to_notes_on_every_row_without_a_notes_column() -> None:
    header = "provider,model,input_per_1m_usd,output_per_1m_usd,cached_input_per_1m_usd,"
    header += "max_input_tokens,max_output_tokens,source,as_of\n"
    iso_first = header + "p,m1,1,2,,,,s,2026-01-02\np,m2,1,2,,,,s,litellm==1.0\n"
    rows = parse_csv(DataKind.api_prices, iso_first, path="a.csv")
    assert [r["notes"] for r in rows] == ["", "as_of: litellm==1.0"]
    assert len({frozenset(r) for r in rows}) == 1  # same keys on every row: one executemany
    text_first = header + "p,m2,1,2,,,,s,litellm==1.0\np,m1,1,2,,,,s,2026-01-02\n"
    assert [r["notes"] for r in parse_csv(DataKind.api_prices, text_first, path="a.csv")] == [
        "as_of: litellm==1.0",
        "",
    ]


@pytest.mark.parametrize(
    ("kind", "overrides", "column", "rule"),
    [
        (DataKind.gpus, {"memory_bw_gbps": 0}, "memory_bw_gbps", "must be > 0"),
        (DataKind.gpus, {"memory_gb": -80}, "memory_gb", "must be > 0"),
        (DataKind.gpus, {"intra_node_bw_gbps": 0}, "intra_node_bw_gbps", "must be > 0"),
        (DataKind.gpus, {"bf16_tflops": 0}, "bf16_tflops", "must be > 0"),
        (DataKind.gpus, {"int8_tops": -1}, "int8_tops", "must be > 0"),
        (DataKind.gpus, {"max_per_node": 0}, "max_per_node", "must be >= 1"),
        (DataKind.gpus, {"memory_bw_gbps": "nan"}, "memory_bw_gbps", "expected a finite number"),
        (DataKind.models, {"params_b": 0}, "params_b", "must be > 0"),
        (DataKind.models, {"active_params_b": 0}, "active_params_b", "must be > 0"),
        (DataKind.models, {"params_b": 1, "active_params_b": 2}, "active_params_b", "must be <= params_b"),
        (DataKind.models, {"num_layers": 0}, "num_layers", "must be > 0"),
        (DataKind.models, {"hidden_size": 0}, "hidden_size", "must be > 0"),
        (DataKind.models, {"num_attention_heads": 0}, "num_attention_heads", "must be > 0"),
        (DataKind.models, {"num_kv_heads": 0}, "num_kv_heads", "must be > 0"),
        (DataKind.models, {"vocab_size": -5}, "vocab_size", "must be > 0"),
        (DataKind.models, {"max_context": 0}, "max_context", "must be > 0"),
        (DataKind.models, {"kv_bytes_per_token_fp16": 0}, "kv_bytes_per_token_fp16", "must be > 0"),
        (DataKind.models, {"moe_num_experts": 8, "moe_top_k": 9}, "moe_top_k", "must be <= moe_num_experts"),
        (DataKind.models, {"max_context": 3_000_000_000}, "max_context", "INTEGER range"),
        (DataKind.models, {"sliding_window_tokens": 0, "sliding_layers": 1}, "sliding_window_tokens", ">= 1"),
        (DataKind.models, {"sliding_window_tokens": 128, "sliding_layers": 0}, "sliding_layers", ">= 1"),
        (
            DataKind.models,
            {"sliding_window_tokens": 128, "sliding_layers": 99},
            "sliding_layers",
            "<= num_layers",
        ),
        (DataKind.offers, {"gpu_count": -1}, "gpu_count", "must be >= 0"),
        (DataKind.offers, {"price_per_hour_usd": 0}, "price_per_hour_usd", "must be > 0"),
        (DataKind.offers, {"spot_price_per_hour_usd": 0}, "spot_price_per_hour_usd", "must be > 0"),
        (DataKind.api_prices, {"input_per_1m_usd": -1}, "input_per_1m_usd", "must be >= 0"),
        (DataKind.api_prices, {"output_per_1m_usd": -0.5}, "output_per_1m_usd", "must be >= 0"),
        (DataKind.api_prices, {"cached_input_per_1m_usd": -1}, "cached_input_per_1m_usd", "must be >= 0"),
        (DataKind.benchmarks, {"ttft_ms": 0}, "ttft_ms", "must be > 0"),
        (DataKind.benchmarks, {"tpot_ms": -1}, "tpot_ms", "must be > 0"),
        (DataKind.benchmarks, {"tp": 0}, "tp", "must be >= 1"),
        (DataKind.benchmarks, {"isl": 0}, "isl", "must be >= 1"),
        (DataKind.benchmarks, {"osl": 0}, "osl", "must be >= 1"),
        (DataKind.benchmarks, {"concurrency": 0}, "concurrency", "must be >= 1"),
        (DataKind.use_cases, {"prompt_tokens": 0}, "prompt_tokens", "must be > 0"),
        (DataKind.use_cases, {"itl_p95_ms": 0}, "itl_p95_ms", "must be > 0"),
        (DataKind.use_cases, {"min_params_b": -1}, "min_params_b", "must be > 0"),
    ],
)
def test_out_of_range_values_name_file_line_column_value_and_rule(
    kind: DataKind, overrides: dict[str, object], column: str, rule: str
) -> None:
    text = _csv_of(kind, _first(kind), **overrides)
    with pytest.raises(CatalogError) as raised:
        parse_csv(kind, text, path="mine.csv")
    message = str(raised.value)
    assert message.startswith(f"mine.csv:2: column {column}: ") and rule in message, message
    assert repr(str(overrides[column])) in message and "\n" not in message


def test_a_window_without_its_layer_count_is_rejected() -> None:
    text = _csv_of(DataKind.models, _first(DataKind.models), sliding_window_tokens=128)
    with pytest.raises(CatalogError) as raised:
        parse_csv(DataKind.models, text, path="mine.csv")
    assert str(raised.value) == (
        "mine.csv:2: column sliding_layers: a value is required when sliding_window_tokens is given (128)"
    )


def test_values_at_the_bounds_are_accepted() -> None:
    cpu_only = _csv_of(DataKind.offers, _first(DataKind.offers), gpu=None, gpu_count=0)
    assert parse_csv(DataKind.offers, cpu_only, path="o.csv")[0]["gpu_count"] == 0
    free = _csv_of(DataKind.api_prices, _first(DataKind.api_prices), input_per_1m_usd=0, output_per_1m_usd=0)
    assert parse_csv(DataKind.api_prices, free, path="p.csv")[0]["input_per_1m_usd"] == 0
    dense = _csv_of(DataKind.models, _first(DataKind.models), moe_num_experts=None, moe_top_k=None)
    assert parse_csv(DataKind.models, dense, path="m.csv")[0]["moe_top_k"] is None
    edge = _csv_of(DataKind.models, _first(DataKind.models), max_context=2**31 - 1)
    assert parse_csv(DataKind.models, edge, path="m.csv")[0]["max_context"] == 2**31 - 1


def test_every_packaged_row_passes_the_range_rules() -> None:
    data = load_packaged()  # parse_csv runs the rules on every packaged row; a violation raises here
    assert data.accelerators and data.benchmarks


# -- patches: columns the shared files lack, set by natural key ----------------------------------------------

PATCH_HEADER = "name,sliding_window_tokens,sliding_layers,source\n"


def _models_by_key() -> dict[tuple[Any, ...], dict[str, Any]]:
    return {(row["name"],): row for row in read_packaged_rows(DataKind.models)}


def test_every_model_the_shared_data_calls_sliding_has_its_window_facts() -> None:
    models = load_packaged(benchmarks=False).models
    sliding = [m for m in models if "sliding" in m.attention]
    assert {m.name for m in sliding} >= {"gpt-oss-20b", "gpt-oss-120b", "Gemma-3-27B"}
    for spec in sliding:
        assert spec.sliding_window_tokens and spec.sliding_layers, spec.name
        assert "sliding_window_tokens, sliding_layers from " in spec.notes  # the patch cites its source
    oss = next(m for m in models if m.name == "gpt-oss-120b")
    assert (oss.sliding_window_tokens, oss.sliding_layers, oss.sliding_share) == (128, 18, 0.5)
    assert all(m.sliding_share == 0.0 for m in models if "sliding" not in m.attention)


def test_a_patch_sets_only_its_columns_and_keeps_the_rest() -> None:
    merged = _models_by_key()
    before = dict(merged[("Llama-3.1-8B",)])
    columns = apply_patch(
        DataKind.models, merged, PATCH_HEADER + "Llama-3.1-8B,4096,16,a paper\n", path="p.csv"
    )
    after = merged[("Llama-3.1-8B",)]
    assert columns == {"sliding_window_tokens", "sliding_layers"}
    assert {k: v for k, v in after.items() if before.get(k) != v} == {
        "sliding_window_tokens": 4096,
        "sliding_layers": 16,
        "notes": f"{before['notes']}; sliding_window_tokens, sliding_layers from a paper",
    }


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("Llama-9.9-1B,128,4,src", "p.csv:2: no models row 'Llama-9.9-1B' to patch"),
        ("Llama-3.1-8B,128,99,src", "p.csv:2: column sliding_layers: got '99', must be <= num_layers (32)"),
        (
            "Llama-3.1-8B,128,,src",
            "p.csv:2: column sliding_layers: a value is required when sliding_window_tokens",
        ),
        (
            "Llama-3.1-8B,wide,4,src",
            "p.csv:2: column sliding_window_tokens: expected a whole number, got 'wide'",
        ),
        ("Llama-3.1-8B,128,4,", "p.csv:2: the key columns and source need a value"),
    ],
)
def test_a_bad_patch_names_its_line_and_changes_nothing(row: str, message: str) -> None:
    merged = _models_by_key()
    before = {key: dict(values) for key, values in merged.items()}
    with pytest.raises(CatalogError) as raised:
        apply_patch(
            DataKind.models, merged, PATCH_HEADER + "gpt-oss-20b,64,12,src\n" + row + "\n", path="p.csv"
        )
    assert message.replace("p.csv:2", "p.csv:3") in str(raised.value)
    assert merged == before  # the good first line was not applied either


def test_a_patch_with_an_unknown_column_is_rejected() -> None:
    with pytest.raises(CatalogError, match=r"p.csv:1: unknown column\(s\) window"):
        apply_patch(DataKind.models, _models_by_key(), "name,window,source\nx,1,s\n", path="p.csv")
