"""The live watch's egress rules (``api/_egress``): link-local never unless listed, an allow-list when set."""

from __future__ import annotations

import ipaddress

import pytest

from servewise.api._egress import allowed_networks, check_egress
from servewise.errors import UsageError


def test_without_a_list_any_address_but_link_local_is_allowed() -> None:
    check_egress("http://127.0.0.1:8000/metrics")
    check_egress("http://10.1.2.3:8000/metrics")
    check_egress("http://localhost:8000/metrics")  # a name: every address it resolves to is checked
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fe80::1%25eth0]:80/"):
        with pytest.raises(UsageError, match="link-local"):
            check_egress(url)


def test_a_list_allows_only_its_networks_and_can_name_a_link_local_one() -> None:
    allowed = allowed_networks("10.0.0.0/8, 127.0.0.1 ,169.254.10.0/24")
    assert allowed == [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "127.0.0.1/32", "169.254.10.0/24")]
    check_egress("http://10.9.9.9/metrics", allowed)
    check_egress("http://169.254.10.5/metrics", allowed)  # listed explicitly: allowed
    with pytest.raises(UsageError, match="outside the networks"):
        check_egress("http://192.168.1.1/metrics", allowed)
    with pytest.raises(UsageError, match="link-local"):
        check_egress("http://169.254.169.254/", allowed)


def test_a_bad_list_or_an_unknown_host_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVEWISE_WATCH_ALLOW", "10.0.0.0/8,not-a-network")
    with pytest.raises(UsageError, match="'not-a-network', which is not an address or network"):
        allowed_networks()
    monkeypatch.setenv("SERVEWISE_WATCH_ALLOW", " ")
    assert allowed_networks() is None
    with pytest.raises(UsageError, match="does not resolve"):
        check_egress("http://no-such-host.invalid/metrics")
