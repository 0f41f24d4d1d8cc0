"""``servewise alerts`` through the real CLI: thresholds, projection and anomalies from a spend CSV; bad files."""

import csv
import io
import json
from pathlib import Path

import pytest

# Feb 25–28 then Mar 1–6. March to date: 320 + 300 + 310 + 700 + 330 + 340 = $2,300 after 6 of 31 days.
SPEND = """date,spend_usd
2025-02-25,300
2025-02-26,310
2025-02-27,290
2025-02-28,300
2025-03-01,320
2025-03-02,300
2025-03-03,310
2025-03-04,700
2025-03-05,330
2025-03-06,340
"""


@pytest.fixture
def spend_csv(tmp_path: Path) -> Path:
    path = tmp_path / "spend.csv"
    path.write_text(SPEND)
    return path


def test_json_thresholds_projection_and_anomalies(cli, spend_csv: Path):
    # budget $2,500: 80 % = $2,000 crossed (cumulative 320, 620, 930, 1,630, 1,960, 2,300 → day 6);
    # run rate 2,300 / 6 = $383.33/day → 383.33 × 31 = $11,883.33 at month end;
    # 95 % = $2,375: ⌈2,375 / 383.33⌉ = ⌈6.20⌉ = day 7; 100 % = $2,500: ⌈6.52⌉ = day 7.
    # Anomalies: only days 8–10 of the file have 7 days before them. Mar 4: window Feb 25–Mar 3 = 300, 310, 290,
    # 300, 320, 300, 310 → median 300; 700 > 450 → ratio 2.33. Mar 5: window 310, 290, 300, 320, 300, 310, 700 →
    # median 310; 330 < 465. Mar 6: median 310 (290…700 sorted: 290 300 310 310 320 330 700); 340 < 465.
    code, out, err = cli("alerts", "--budget", "2500", "--spend", str(spend_csv), "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["month"] == "2025-03"
    assert document["spend_to_date_usd"] == pytest.approx(2_300)
    assert (document["day_of_month"], document["days_in_month"]) == (6, 31)
    assert document["projected_month_usd"] == pytest.approx(2_300 / 6 * 31)
    assert [
        (t["threshold_usd"], t["crossed"], t["crossed_on_day"], t["projected_day"])
        for t in document["thresholds"]
    ] == [
        (2_000, True, 6, None),
        (2_375, False, None, 7),
        (2_500, False, None, 7),
    ]
    assert [(a["date"], a["baseline_usd"]) for a in document["anomalies"]] == [("2025-03-04", 300)]
    assert document["anomalies"][0]["ratio"] == pytest.approx(700 / 300)
    assert document["policy"]["schema"] == "servewise.alert_policy/1"
    assert document["days_judged_for_anomalies"] == 3


def test_table_marks_the_crossed_threshold(cli, spend_csv: Path):
    code, out, _ = cli("alerts", "--budget", "2500", "--spend", str(spend_csv))
    assert code == 0
    assert "CROSSED on day 6" in out and "projected on day 7" in out
    assert "month to date: $2,300.00 of $2,500.00 (92 %) after day 6 of 31" in out
    assert "$11,883.33 at month end" in out and "2025-03-04" in out


def test_policy_flags_change_the_rule(cli, spend_csv: Path):
    # window 3 with the mean, factor 2: Mar 4's window Mar 1–3 has mean 310 → 700 > 620 is still an anomaly;
    # factor 2.5 (> 700 / 310 = 2.26) → no anomaly
    code, out, _ = cli(
        "alerts", "--budget", "9000", "--spend", str(spend_csv), "--window-days", "3", "--baseline", "mean",
        "--anomaly-factor", "2", "--thresholds", "50,100", "--format", "json",
    )  # fmt: skip
    document = json.loads(out)
    assert code == 0 and [a["date"] for a in document["anomalies"]] == ["2025-03-04"]
    assert document["anomalies"][0]["baseline_usd"] == pytest.approx(310)
    assert [t["threshold_usd"] for t in document["thresholds"]] == [4_500, 9_000]
    code, out, _ = cli(
        "alerts", "--budget", "9000", "--spend", str(spend_csv), "--window-days", "3", "--baseline", "mean",
        "--anomaly-factor", "2.5", "--format", "json",
    )  # fmt: skip
    assert json.loads(out)["anomalies"] == []


def test_csv_and_markdown(cli, spend_csv: Path):
    code, out, _ = cli("alerts", "--budget", "2500", "--spend", str(spend_csv), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["kind"] for r in rows] == ["threshold", "threshold", "threshold", "anomaly"]
    assert rows[3]["date"] == "2025-03-04"
    code, out, _ = cli("alerts", "--budget", "2500", "--spend", str(spend_csv), "--format", "markdown")
    assert code == 0 and "| threshold % |" in out and "- projection:" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("day,usd\n2025-03-01,1\n", "header must start with date,spend_usd"),
        ("date,spend_usd\n2025-03-01,abc\n", "line 2: expected an ISO date and a number"),
        ("date,spend_usd\n03/01/2025,1\n", "line 2: expected an ISO date"),
        ("date,spend_usd\n2025-03-01,-4\n", "line 2: spend must be ≥ 0"),
        ("date,spend_usd\n", "no rows"),
        ("date,spend_usd\n2025-03-01,1\n2025-03-03,1\n", "no row for 2025-03-02"),
        ("date,spend_usd\n2025-03-01,1\n2025-03-01,2\n", "2025-03-01 appears twice"),
        ("date,spend_usd\n2025-03-02,1\n", "2025-03 starts on 2025-03-02"),
    ],
)
def test_malformed_spend_files_are_one_line_errors(cli, tmp_path: Path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, out, err = cli("alerts", "--budget", "100", "--spend", str(path))
    assert code == 2 and out == ""
    assert message in err and f"--spend {path}" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--budget", "0"), "--budget: must be > 0"),
        (("--budget", "10", "--thresholds", "80,x"), "--thresholds: expected percentages"),
        (("--budget", "10", "--anomaly-factor", "0.5"), "--anomaly-factor: must be > 1"),
        (("--budget", "10", "--window-days", "0"), "--window-days: must be ≥ 1"),
    ],
)
def test_invalid_flags_exit_2(cli, spend_csv: Path, args, message):
    code, _, err = cli("alerts", "--spend", str(spend_csv), *args)
    assert code == 2 and message in err


def test_missing_file_is_a_one_line_error(cli, tmp_path: Path):
    code, _, err = cli("alerts", "--budget", "10", "--spend", str(tmp_path / "nope.csv"))
    assert code == 2 and "cannot read" in err and len(err.strip().splitlines()) == 1
