"""Which hosts the server may fetch from on a user's behalf (a live watch scrapes URLs the request names).

Why: an endpoint field that the server fetches is a server-side request forgery hole — a caller can make the
server read what only it can reach. Two rules, checked on every address the host name resolves to:

* link-local addresses (169.254.0.0/16, fe80::/10: the cloud instance-metadata service and its credentials) are
  never scraped unless ``SERVEWISE_WATCH_ALLOW`` lists them explicitly;
* when ``SERVEWISE_WATCH_ALLOW`` is set (comma-separated addresses or networks, e.g. ``10.0.0.0/8,127.0.0.1``),
  only addresses inside it are scraped. Unset, any other address is allowed (a workstation watching its own
  replicas); a shared server should set it to the replicas' network.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from urllib.parse import urlsplit

from servewise.errors import UsageError

__all__ = ["WATCH_ALLOW_ENV", "allowed_networks", "check_egress"]

WATCH_ALLOW_ENV = "SERVEWISE_WATCH_ALLOW"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def allowed_networks(value: str | None = None) -> list[Network] | None:
    """The networks of ``SERVEWISE_WATCH_ALLOW`` (or ``value``); None when it is unset or blank."""
    raw = os.environ.get(WATCH_ALLOW_ENV) if value is None else value
    if raw is None or not raw.strip():
        return None
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise UsageError(
                f"{WATCH_ALLOW_ENV} has {item!r}, which is not an address or network; the server's operator "
                "should list addresses or CIDR networks, e.g. 10.0.0.0/8,127.0.0.1"
            ) from None
    return networks


def _addresses(host: str, port: int | None) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise UsageError(
            f"endpoint host {host!r} does not resolve; check the name or give its address"
        ) from None
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


def check_egress(url: str, allowed: list[Network] | None = None) -> None:
    """Refuse ``url`` when a rule in the module docstring forbids one of its host's addresses."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    for address in _addresses(host, parts.port):
        inside = allowed is not None and any(address in network for network in allowed)
        if address.is_link_local and not inside:
            raise UsageError(
                f"endpoint {url!r} is a link-local address ({address}, where cloud metadata lives); a live watch "
                f"does not scrape it unless {WATCH_ALLOW_ENV} lists it"
            )
        if allowed is not None and not inside:
            listed = ",".join(str(n) for n in allowed)
            raise UsageError(
                f"endpoint {url!r} ({address}) is outside the networks this server may scrape ({WATCH_ALLOW_ENV}="
                f"{listed}); ask its operator to add it, or run `servewise watch` yourself"
            )
