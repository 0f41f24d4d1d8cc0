"""``servewise calibrate`` and ``scripts/refresh_calibration.py``: fit, write atomically, print the levels."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from servewise.catalog import DataKind, load_packaged, parse_csv
from servewise.catalog._loader import to_record
from servewise.perf._calibrate import CalibrationTable, data_fingerprint

from .conftest import ROWS_PER_GROUP, unresolvable_rows, write_csv

ROOT = Path(__file__).resolve().parents[2]


def _fingerprint_of(path: Path) -> str:
    values = parse_csv(DataKind.benchmarks, path.read_text(encoding="utf-8"), path=str(path))
    return data_fingerprint(to_record(DataKind.benchmarks, v) for v in values)


def test_calibrate_writes_a_loadable_table_and_prints_its_levels(cli, subset_csv, tmp_path):
    output = tmp_path / "fit.json"
    code, out, err = cli(
        "calibrate", "--data", str(subset_csv), "-o", str(output), "--fitted-on", "2026-01-02"
    )
    assert code == 0, err
    table = CalibrationTable.from_json(json.loads(output.read_text(encoding="utf-8")))
    assert table.fitted_on == "2026-01-02"
    assert table.rows == 2 * ROWS_PER_GROUP and table.skipped == 2
    assert table.data_sha256 == _fingerprint_of(subset_csv)  # every row given, the skipped ones included
    assert {("B200", "vllm", "fp4"), ("B300", "vllm", "fp4"), ("vllm",), ()} <= set(table.levels)
    assert table.params_for("B200", "vllm", "fp4").provenance == "calibrated"
    for needle in ("global", "B200/vllm/fp4", "B300/vllm", "fitted", "compute eff", "step overhead ms"):
        assert needle in out, needle
    assert "simulating rows" in err and "fitting levels" in err and "skipped 2 row(s)" in err


def test_calibrate_json_and_default_output(cli, subset_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("calibrate", "--data", str(subset_csv), "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    written = json.loads((tmp_path / "calibration_fit.json").read_text(encoding="utf-8"))
    assert document["output"] == "calibration_fit.json" and document["rows"] == written["rows"]
    levels = {tuple(level["key"]) for level in written["levels"]}
    assert len(document["levels"]) == len(levels)
    b200 = next(level for level in document["levels"] if level["key"] == "B200/vllm/fp4")
    fitted = next(level for level in written["levels"] if level["key"] == ["B200", "vllm", "fp4"])
    assert b200["compute_efficiency"] == pytest.approx(fitted["params"]["compute_efficiency"], abs=1e-4)
    assert b200["step_overhead_ms"] == pytest.approx(fitted["params"]["step_overhead_s"] * 1000, abs=1e-3)
    assert b200["status"] == "fitted" and b200["rows"] == ROWS_PER_GROUP


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--fitted-on", "yesterday"), "--fitted-on expects an ISO date"),
        (("-o", "missing-folder/fit.json"), "does not exist"),
    ],
)
def test_bad_options_fail_before_any_work(cli, subset_csv, tmp_path, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("calibrate", "--data", str(subset_csv), *extra)
    assert code == 2 and message in err and "simulating" not in err
    assert not (tmp_path / "calibration_fit.json").exists()


def test_nothing_to_fit_leaves_the_previous_table(cli, tmp_path):
    output = tmp_path / "fit.json"
    output.write_text("previous", encoding="utf-8")
    only_skipped = write_csv(tmp_path / "skip.csv", unresolvable_rows())
    code, _, err = cli("calibrate", "--data", str(only_skipped), "-o", str(output))
    assert code == 2 and "nothing to fit" in err and "unknown system 'tpu_v9_pod'" in err
    assert output.read_text(encoding="utf-8") == "previous"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".fit.json")] == []


def _refresh_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "refresh_calibration", ROOT / "scripts" / "refresh_calibration.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_refresh_script_check_compares_the_data_fingerprint(tmp_path, capsys):
    script = _refresh_script()
    current = data_fingerprint(load_packaged().benchmarks)
    fit = tmp_path / "fit.json"
    fit.write_text(json.dumps({"data_sha256": current}), encoding="utf-8")
    assert script.main(["--check", "--output", str(fit)]) == 0
    fit.write_text(json.dumps({"data_sha256": "0" * 64}), encoding="utf-8")
    assert script.main(["--check", "--output", str(fit)]) == 1
    assert script.main(["--check", "--output", str(tmp_path / "none.json")]) == 1
    assert "stale" in capsys.readouterr().err
