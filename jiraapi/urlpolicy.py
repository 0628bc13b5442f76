"""Which Jira URLs the service may call: the policy against server-side request forgery.

Pure and without Django: the caller builds a `UrlPolicy` from its settings (the edge) and asks
it about a URL when the URL is saved and again when connecting (`jiraapi.transport`), since a
host name may resolve to another address tomorrow.

- Only `http` and `https`; `http` only when the policy allows it.
- No credentials in the URL.
- Every address the host resolves to must be public: loopback, private, link-local, shared,
  unspecified, multicast, reserved and cloud-metadata addresses are refused, unless the
  allow-list names the host, the address or a network holding it. A metadata address is
  allowed only when the allow-list names that address itself (a network is not enough).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}

# Cloud instance-metadata services (AWS, ECS, GCP, Azure, Alibaba, Oracle) and their names.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data.ec2.internal"}
)


class UnsafeUrl(ValueError):
    """The policy refuses the URL. The message says why and names the origin, never the path or
    the query (they may carry secrets)."""


class UnresolvableHost(UnsafeUrl):
    """The host name does not resolve (now): refused when connecting, may pass later."""


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in: what "same site" means."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").rstrip("."), port or DEFAULT_PORTS.get(scheme)


def origin_text(url: str) -> str:
    scheme, host, port = origin(url)
    if ":" in host:
        host = f"[{host}]"
    shown_port = "" if port in (None, DEFAULT_PORTS.get(scheme)) else f":{port}"
    return f"{scheme}://{host}{shown_port}"


def _address_kind(ip: IPAddress) -> str | None:
    """Why `ip` is not a public address, or None when it is."""
    if ip in METADATA_ADDRESSES:
        return "cloud-metadata"
    for kind, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return kind
    return None if ip.is_global else "non-public"


@dataclass(frozen=True)
class UrlPolicy:
    allow_http: bool = False
    allowed_names: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def build(cls, *, allow_http: bool, allowed_hosts: Iterable[str]) -> UrlPolicy:
        """`allowed_hosts`: host names, addresses and networks (CIDR), e.g. `127.0.0.1`,
        `localhost`, `10.0.0.0/8`, `[::1]`."""
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in allowed_hosts:
            entry = entry.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry)
        return cls(bool(allow_http), frozenset(names), tuple(networks))

    # --- addresses -----------------------------------------------------------------------------

    def address_problem(self, address: str | IPAddress) -> str | None:
        """Why the policy refuses a connection to `address` (e.g. "loopback"), or None."""
        ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        kind = _address_kind(ip)
        if kind is None:
            return None
        for network in self.allowed_networks:
            same_family = ip.version == network.version
            if (
                same_family
                and ip in network
                and (kind != "cloud-metadata" or network.num_addresses == 1)
            ):
                return None
        return kind

    def check_address(self, url: str, host: str, address: str | IPAddress) -> None:
        """Refuses a connection to `address` for `host` (the allow-list may name the host)."""
        if host in self.allowed_names:
            return
        kind = self.address_problem(address)
        if kind is not None:
            via = "" if host == str(address) else f"{host} resolves to "
            raise UnsafeUrl(
                f"{origin_text(url)}: {via}{kind} address {address} is not allowed for a Jira "
                "site unless the allow-list names it"
            )

    # --- URLs ----------------------------------------------------------------------------------

    def check(self, url: str, *, require_resolution: bool = False) -> None:
        """Refuses `url` with `UnsafeUrl` unless the policy allows it.

        The host name is resolved, and every address must be allowed. A name that does not
        resolve passes unless `require_resolution` (when connecting it must resolve).
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise UnsafeUrl(f"not a valid URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise UnsafeUrl(f"only http(s) URLs are allowed for a Jira site, not {scheme or '?'}:")
        if scheme == "http" and not self.allow_http:
            raise UnsafeUrl(f"{origin_text(url)}: use https:// (plain http is not allowed)")
        if parts.username is not None or parts.password is not None:
            raise UnsafeUrl("credentials in the URL are not allowed (use the user and token)")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise UnsafeUrl("the URL has no host")
        if host in self.allowed_names:
            return
        if host in METADATA_HOSTS:
            raise UnsafeUrl(f"{origin_text(url)}: a cloud-metadata host is not a Jira site")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            self.check_address(url, host, literal)
            return
        try:
            infos = socket.getaddrinfo(host, port or DEFAULT_PORTS[scheme], type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            if require_resolution:
                raise UnresolvableHost(f"{origin_text(url)}: cannot resolve {host}") from None
            return
        for info in infos:
            self.check_address(url, host, info[4][0])
