"""The gateway config file: the documented example loads and prices every route; bad files are one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from servewise.cli import main
from servewise.gateway import GatewayConfigError, RoutePrice, load_gateway_config, route_prices

EXAMPLE = """\
listen: {host: 127.0.0.1, port: 4000}
timezone: Europe/Berlin
pools:
  - name: bulk
    url: http://127.0.0.1:8000
    models: [Llama-3.1-8B]
    plan: plans/plan.json
    option: 1
    max_context_tokens: 4096
  - name: long
    url: http://127.0.0.1:8001
    models: [Llama-3.1-8B]
    usd_per_hour: 4.10
    tokens_per_s: 2500
apis:
  - name: openai
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
    model: gpt-4.1-mini
    models: [Llama-3.1-8B, gpt-4.1-mini]
routing: {long_context_tokens: 4096, long_context_route: long, local_ratio_target: 0.98, queue_threshold: 8}
alerts: {webhook_url: null, levels_pct: [80, 95, 100]}
cache: {exact: true, max_entries: 10000, ttl_s: 3600}
"""


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real plan from ``servewise plan`` (its own catalog), as the docs tell users to make one."""
    folder = tmp_path_factory.mktemp("plan")
    mp = pytest.MonkeyPatch()
    mp.setenv("SERVEWISE_DB_URL", f"sqlite:///{folder / 'catalog.db'}")
    try:
        main(["plan", "-u", "chatbot_conversational", "--qps", "20", "-o", str(folder / "plan.json")])
    except SystemExit as exit_:
        assert not exit_.code
    finally:
        mp.undo()
    yield folder / "plan.json"


def _write(tmp_path: Path, text: str, name: str = "gateway.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_example_loads_and_prices_every_route(tmp_path: Path, plan_file: Path) -> None:
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "plan.json").write_text(plan_file.read_text(encoding="utf-8"), encoding="utf-8")
    config = load_gateway_config(_write(tmp_path, EXAMPLE))

    assert config.route_names == ("bulk", "long", "openai")
    assert (
        config.pools[0].plan == tmp_path / "plans" / "plan.json"
    )  # relative to the config file, not the cwd
    assert config.client_models == ("Llama-3.1-8B", "gpt-4.1-mini")
    prices = route_prices(config)
    option = next(o for o in json.loads(plan_file.read_text())["options"] if o["rank"] == 1)
    assert prices["bulk"].usd_per_1m_input == pytest.approx(option["cost"]["usd_per_1m_tokens"])
    assert prices["bulk"].usd_per_1m_output == prices["bulk"].usd_per_1m_input
    assert prices["long"].usd_per_1m_output == pytest.approx(4.10 / (3600 * 2500) * 1e6)
    assert (prices["openai"].usd_per_1m_input, prices["openai"].usd_per_1m_output) == (0.4, 1.6)
    assert "catalog api_prices openai/gpt-4.1-mini" in prices["openai"].source


def test_config_prices_override_the_catalog(tmp_path: Path) -> None:
    text = (
        "apis:\n  - {name: x, base_url: 'http://h/v1', model: not-in-catalog, usd_per_1m_input: 1, "
        "usd_per_1m_output: 3}\n"
    )
    assert route_prices(load_gateway_config(_write(tmp_path, text)))["x"] == RoutePrice(1.0, 3.0, "config")


def test_reservations_round_up_and_settlements_round_to_nearest() -> None:
    price = RoutePrice(0.15, 0.6, "test")
    # 3 × 0.15 + 1 × 0.6 = 1.05 µ$
    assert price.worst_case_micro_usd(3, 1) == 2
    assert price.cost_micro_usd(3, 1) == 1
    assert RoutePrice(1000.0, 1000.0, "t").worst_case_micro_usd(10, 10) == 20_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pools: [\n  - name: a\n   url: x\n", "malformed YAML"),
        ("", "is empty"),
        ("- a\n- b\n", "is a list"),
        ("pools: []\n", "no routes"),
        ("apis:\n  - {name: a, base_url: 'http://h/v1', model: gpt-4.1-mini, prise: 1}\n", "apis.0.prise"),
        (
            "pools:\n  - {name: a, url: 'http://h', models: [m], usd_per_hour: 1, tokens_per_s: 1, plan: p.json}\n",
            "give the price one way",
        ),
        ("pools:\n  - {name: a, url: 'http://h', models: [m], usd_per_hour: 1}\n", "needs `tokens_per_s`"),
        (
            "pools:\n  - {name: a, url: 'http://h', models: [m], usd_per_hour: 1, tokens_per_s: 1}\n"
            "apis:\n  - {name: a, base_url: 'http://h/v1', model: gpt-4.1-mini}\n",
            "route name(s) a used twice",
        ),
        (
            "timezone: Mars/Olympus\napis:\n  - {name: a, base_url: 'http://h/v1', model: gpt-4.1-mini}\n",
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            "routing: {long_context_route: nowhere}\napis:\n  - {name: a, base_url: 'http://h/v1', model: m}\n",
            "long_context_route 'nowhere' is not a pool or API",
        ),
        (
            "cache: {semantic: {model: minilm}}\napis:\n  - {name: a, base_url: 'http://h/v1', model: m}\n",
            "semantic cache is not available",
        ),
    ],
)
def test_bad_config_files_are_one_line_errors_naming_the_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(GatewayConfigError) as caught:
        load_gateway_config(_write(tmp_path, text))
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert "gateway.yaml" in message


def test_a_missing_config_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigError, match=r"does not exist; write one .*docs/gateway\.md"):
        load_gateway_config(tmp_path / "nope.yaml")


def test_an_unknown_catalog_model_fails_with_suggestions(tmp_path: Path) -> None:
    config = load_gateway_config(
        _write(tmp_path, "apis:\n  - {name: a, base_url: 'http://h/v1', model: gpt-4.1-minii}\n")
    )
    with pytest.raises(Exception, match=r"gpt-4\.1-mini"):
        route_prices(config)
