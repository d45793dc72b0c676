"""nono_py — run untrusted code under a capability sandbox (Python binding of libnono).

    from nono_py import CapabilitySet, AccessMode, sandboxed_exec

    caps = CapabilitySet()
    caps.allow_path("/usr", AccessMode.READ)
    caps.allow_path(workdir, AccessMode.READ_WRITE)
    caps.block_network()
    r = sandboxed_exec(caps, ["python3", "job.py"], cwd=workdir, timeout_secs=60)

Everything is enforced by the kernel (Landlock, seccomp, a user-notification supervisor) through
libnono; this package is a C extension (nono_py._nono) plus the proxy configuration classes below.

Errors: a missing path raises FileNotFoundError, bad arguments ValueError, EACCES/EPERM
PermissionError, anything else RuntimeError carrying the library's message (and ``.errno``).
"""

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from . import _nono
from ._nono import (
    AccessMode,
    CapabilitySet,
    ExecResult,
    FsCapability,
    ProxyHandle,
    QueryContext,
    SandboxState,
    SupportInfo,
    apply,
    is_supported,
    sandboxed_exec,
    support_info,
)

from ._undo import (
    Change,
    ContentHash,
    ExclusionConfig,
    FileState,
    SessionMetadata,
    SnapshotManager,
    SnapshotManifest,
    record_exec,
    verify_ledger,
)

__version__ = "@VERSION@"  # filled in by meson (configure_file)

__all__ = [
    "AccessMode", "CapabilitySet", "ExecResult", "FsCapability", "ProxyConfig", "ProxyHandle",
    "QueryContext", "RouteConfig", "SandboxState", "SupportInfo", "apply", "is_supported",
    "sandboxed_exec", "start_proxy", "support_info",
    # snapshots and rollback (_undo.py)
    "Change", "ContentHash", "ExclusionConfig", "FileState", "SessionMetadata", "SnapshotManager",
    "SnapshotManifest", "record_exec", "verify_ledger",
]

_PREFIX_RE = re.compile(r"^/?[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*/?$")
_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token (header names)


def _check_str(name, value, *, allow_none=False):
    if value is None and allow_none:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if "\0" in value or "\r" in value or "\n" in value:
        raise ValueError(f"{name} must not contain NUL, CR or LF")


@dataclass(frozen=True)
class RouteConfig:
    """A reverse-proxy route: requests under ``prefix`` go to ``upstream`` with a credential.

    Routes are validated now and served by a later release; until then the route's upstream
    host:port is an allowed proxy destination for CONNECT tunnels only: plain (absolute-form) HTTP
    to it is refused with 403 (X-Nono-Denial: connect-only), unless ``allowed_hosts`` also allows
    it (the wider grant wins).
    """

    prefix: str
    upstream: str
    credential_key: str = None
    inject_header: str = "Authorization"
    credential_format: str = "Bearer {}"

    def __post_init__(self):
        _check_str("prefix", self.prefix)
        _check_str("upstream", self.upstream)
        _check_str("credential_key", self.credential_key, allow_none=True)
        _check_str("inject_header", self.inject_header)
        _check_str("credential_format", self.credential_format)
        if not _PREFIX_RE.match(self.prefix) or any(s in ("", ".", "..")
                                                     for s in self.prefix.strip("/").split("/")):
            raise ValueError(f"prefix {self.prefix!r}: use path segments of [A-Za-z0-9._~-]")
        if self.credential_key is not None and not self.credential_key.strip():
            raise ValueError("credential_key must not be empty (use None for no credential)")
        if not _TOKEN_RE.match(self.inject_header):
            raise ValueError(f"inject_header {self.inject_header!r} is not a valid header name")
        if self.credential_format.count("{}") != 1:
            raise ValueError("credential_format must contain '{}' exactly once")
        u = urllib.parse.urlsplit(self.upstream)
        if u.scheme not in ("http", "https"):
            raise ValueError(f"upstream {self.upstream!r}: scheme must be http or https")
        if u.username is not None or u.password is not None:
            raise ValueError(f"upstream {self.upstream!r}: credentials in the URL are not allowed")
        if u.query or u.fragment:
            raise ValueError(f"upstream {self.upstream!r}: no query or fragment allowed")
        try:
            port = u.port
        except ValueError as e:
            raise ValueError(f"upstream {self.upstream!r}: {e}") from None
        if not u.hostname:
            raise ValueError(f"upstream {self.upstream!r}: no host")
        try:
            ip = ipaddress.ip_address(u.hostname)
        except ValueError:
            ip = None
        if ip is not None and ip.version == 6:
            raise ValueError(f"upstream {self.upstream!r}: IPv6 literal upstreams are not supported")
        object.__setattr__(self, "_target", (u.hostname, port or (443 if u.scheme == "https" else 80)))

    @property
    def upstream_host(self):
        return self._target[0]

    @property
    def upstream_port(self):
        return self._target[1]


def _str_tuple(name, value):
    if value is None:
        return ()
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a list of str, not a single string")
    out = tuple(value)
    for v in out:
        _check_str(f"{name} entry", v)
    return out


@dataclass(frozen=True)
class ProxyConfig:
    """Configuration of the filtering proxy.

    No allowed_hosts means every host is denied. ``allow_all_hosts=True`` allows every public host
    (internal, link-local and metadata addresses stay denied) and excludes ``allowed_hosts``.
    ``allow_internal`` lists loopback/private "host:port" destinations allowed explicitly
    (metadata endpoints are always refused). Patterns are validated by libnono now.
    """

    allowed_hosts: tuple = None
    routes: tuple = None
    bind_addr: str = "127.0.0.1"
    bind_port: int = 0
    max_connections: int = 256
    allow_all_hosts: bool = False
    allow_internal: tuple = None

    def __post_init__(self):
        hosts = _str_tuple("allowed_hosts", self.allowed_hosts)
        internal = _str_tuple("allow_internal", self.allow_internal)
        routes = () if self.routes is None else tuple(self.routes)
        if isinstance(self.routes, (str, bytes)):
            raise TypeError("routes must be a list of RouteConfig")
        for r in routes:
            if not isinstance(r, RouteConfig):
                raise TypeError(f"routes entries must be RouteConfig, not {type(r).__name__}")
        prefixes = [r.prefix.strip("/") for r in routes]
        dup = {p for p in prefixes if prefixes.count(p) > 1}
        if dup:
            raise ValueError(f"duplicate route prefix: {sorted(dup)[0]!r}")
        if not isinstance(self.allow_all_hosts, bool):
            raise TypeError("allow_all_hosts must be a bool")
        _check_str("bind_addr", self.bind_addr)
        for name in ("bind_port", "max_connections"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{name} must be an int, not {type(v).__name__}")
        # Until routes are served, a route's upstream host:port is a CONNECT-only destination
        # (nono_proxy_config_allow_host_connect_only).
        targets = tuple(f"{r.upstream_host}:{r.upstream_port}" for r in routes)
        native = _nono._ProxyConfig(hosts, internal, self.bind_addr, self.bind_port,
                                    self.max_connections, self.allow_all_hosts, targets)
        object.__setattr__(self, "allowed_hosts", hosts)
        object.__setattr__(self, "allow_internal", internal)
        object.__setattr__(self, "routes", routes)
        object.__setattr__(self, "_native", native)  # not a field: asdict/replace/eq ignore it


def start_proxy(config=None):
    """Start the filtering proxy on its own thread; returns a ProxyHandle (a context manager)."""
    if config is None:
        config = ProxyConfig()
    if not isinstance(config, ProxyConfig):
        raise TypeError(f"start_proxy() needs a ProxyConfig, not {type(config).__name__}")
    return _nono._start_proxy(config._native)
