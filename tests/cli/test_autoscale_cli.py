"""``servewise autoscale`` end to end through the real CLI and a real catalog database."""

import json
from pathlib import Path

import pytest

WORKLOAD = (
    "--prompt-tokens",
    "512",
    "--output-tokens",
    "256",
    "--qps",
    "4",
    "--gpu",
    "L4",
    "--model",
    "Qwen2.5-7B",
)
"""One GPU and one model keep the plan to about a second."""


def _curve(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "curve.csv"
    path.write_text(text)
    return path


def test_table_shows_autoscaled_vs_static_and_the_assumptions(cli):
    code, out, err = cli("autoscale", *WORKLOAD, "--shape", "business_hours")
    assert code == 0, err
    assert "autoscaled" in out and "static peak" in out and "★" in out
    assert "shape business_hours" in out and "cold start 10 min" in out and "--hourly" in out


def test_json_series_adds_up_to_the_month(cli, tmp_path):
    target = tmp_path / "month.json"
    code, out, err = cli("autoscale", *WORKLOAD, "--format", "json", "-o", str(target))
    assert code == 0, err
    document = json.loads(out)
    assert document == json.loads(target.read_text())
    assert set(document) == {"plan_option", "curve", "policy", "summary", "hours", "assumptions"}
    hours, summary = document["hours"], document["summary"]
    assert len(hours) == 168 and hours[0]["when"] == "Mon 00:00" and hours[-1]["when"] == "Sun 23:00"
    # weekly shape, mean 1 → the curve's mean is the workload's 4 req/s
    assert summary["mean_qps"] == pytest.approx(4.0)
    # $/month = Σ hourly $ over the week · 730/168
    assert summary["usd_per_month"] == pytest.approx(sum(h["usd"] for h in hours) * 730 / 168)
    price = document["plan_option"]["usd_per_replica_hour"]
    assert summary["static_usd_per_month"] == pytest.approx(summary["static_replicas"] * price * 730)
    assert document["policy"] == {"min_replicas": 1, "scale_up_lag_min": 5, "cold_start_min": 10}


def test_curve_csv_of_daily_multipliers(cli, tmp_path):
    # 4 req/s · 0.5 at night, · 2 from 12:00 to 13:00, · 1 otherwise
    rows = [f"{h},{2.0 if h == 12 else 0.5 if h < 6 else 1.0}" for h in range(24)]
    curve = _curve(tmp_path, "hour,multiplier\n" + "\n".join(rows) + "\n")
    code, out, err = cli(
        "autoscale", *WORKLOAD, "--curve", str(curve), "--min-replicas", "2", "--cold-start-min", "0",
        "--scale-up-lag-min", "0", "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    hours = json.loads(out)["hours"]
    assert [h["qps"] for h in hours[:24]] == [8.0 if h == 12 else 2.0 if h < 6 else 4.0 for h in range(24)]
    assert hours[24 * 6 + 12]["qps"] == 8.0  # Sunday repeats the day
    assert min(h["target_replicas"] for h in hours) >= 2
    assert all(h["minutes_at_risk"] == 0 for h in hours)


def test_curve_csv_of_absolute_qps_and_csv_output(cli, tmp_path):
    curve = _curve(tmp_path, "hour,qps\n" + "\n".join(f"{h},{1 + h % 24}" for h in range(168)) + "\n")
    code, out, err = cli("autoscale", *WORKLOAD, "--curve", str(curve), "--format", "csv")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("hour,when,qps,target_replicas") and len(lines) == 169
    assert lines[24].split(",")[:3] == ["23", "Mon 23:00", "24.0"]


def test_markdown_and_hourly_table(cli):
    code, out, _ = cli("autoscale", *WORKLOAD, "--format", "markdown", "--hourly")
    assert code == 0
    assert "| provisioning |" in out and "| Sun 23:00 |" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when,load\n0,1\n", "first line must be 'hour,multiplier' or 'hour,qps'"),
        ("hour,multiplier\n0,abc\n", "line 2: expected 'hour,multiplier' with numbers"),
        ("hour,qps\n" + "\n".join(f"{h},1" for h in range(23)) + "\n", "hours must be 0-23"),
        ("hour,qps\n0,1\n0,2\n", "hour 0 appears twice"),
        (
            "hour,qps\n" + "\n".join(f"{h},{-1 if h == 3 else 1}" for h in range(24)) + "\n",
            "finite number >= 0",
        ),
        ("", "first line must be"),
    ],
)
def test_malformed_curve_is_one_line_and_exit_2(cli, tmp_path, text, message):
    target = tmp_path / "never.json"
    code, out, err = cli("autoscale", *WORKLOAD, "--curve", str(_curve(tmp_path, text)), "-o", str(target))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert out == "" and not target.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--shape", "diurnal"), "unknown traffic shape 'diurnal'"),
        (("--min-replicas", "-1"), "--min-replicas must be >= 0"),
        (("--cold-start-min", "-3"), "must be >= 0 minutes"),
        (("--curve", "/nonexistent/curve.csv"), "cannot read"),
    ],
)
def test_bad_flags_exit_2(cli, args, message):
    code, _, err = cli("autoscale", *WORKLOAD, *args)
    assert code == 2 and message in err
