"""A measured row as a simulation: the engine's parallelism read from the row, including the rows whose
attention-DP flag the source lost."""

import dataclasses

import pytest

from servewise.catalog import BenchmarkRow, load_packaged
from servewise.perf._benchpoint import row_parallelism, setup_for_row


@pytest.fixture(scope="module")
def data():
    return load_packaged()


@pytest.fixture(scope="module")
def trtllm_row(data) -> BenchmarkRow:
    """An ordinary TensorRT-LLM MoE row (tensor parallel, no attention DP, concurrency within the slots)."""
    return next(
        r
        for r in data.benchmarks
        if r.backend == "trtllm"
        and r.model == "deepseek-ai/DeepSeek-R1"
        and r.tp == 8
        and r.attention_dp <= 1
        and not r.parallelism_suspect
        and r.concurrency <= (r.batch_size or r.concurrency)
    )


def test_a_row_within_its_slots_keeps_its_parallelism(trtllm_row):
    assert row_parallelism(trtllm_row) == (8, 1)
    ranks = dataclasses.replace(trtllm_row, tp=1, attention_dp=8, batch_size=4, concurrency=32)
    assert row_parallelism(ranks) == (1, 8)


def test_clients_equal_to_batch_times_tp_mean_attention_dp_over_the_tp_ranks(data, trtllm_row):
    lost_flag = dataclasses.replace(trtllm_row, attention_dp=1, batch_size=5, concurrency=40)
    assert row_parallelism(lost_flag) == (1, 8)
    setup = setup_for_row(lost_flag, data.models, data.accelerators, data.aliases)
    assert not isinstance(setup, str)
    assert (setup.tp, setup.dp) == (1, 8)  # the same 8 GPUs; each rank serves 5 clients
    assert setup.engine.max_num_seqs == 5


def test_more_clients_than_slots_otherwise_is_skipped_with_the_reason(data, trtllm_row):
    many = dataclasses.replace(trtllm_row, tp=2, attention_dp=1, batch_size=13, concurrency=416)
    reason = row_parallelism(many)
    assert isinstance(reason, str)
    assert "concurrency 416 exceeds batch_size 13 x 1 attention-DP rank(s)" in reason
    assert setup_for_row(many, data.models, data.accelerators, data.aliases) == reason


def test_the_packaged_rows_read_so(data):
    """The 29 rows this rule is for (all TensorRT-LLM, attention DP blank or 0): 21 read as attention DP over their
    tp ranks, 8 skipped; no other row changes."""

    def as_given(r: BenchmarkRow) -> tuple[int, int]:
        return max(r.id_tp if r.parallelism_suspect and r.id_tp else r.tp, 1), max(r.attention_dp, 1)

    changed = {
        r.source_row_id: row_parallelism(r) for r in data.benchmarks if row_parallelism(r) != as_given(r)
    }
    assert {r.backend for r in data.benchmarks if r.source_row_id in changed} == {"trtllm"}
    assert sum(isinstance(v, tuple) for v in changed.values()) == 21
    assert sum(isinstance(v, str) for v in changed.values()) == 8
