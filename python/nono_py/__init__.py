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

import enum
import ipaddress
import re
import urllib.parse
from dataclasses import dataclass, field

from . import _nono
from ._nono import (
    AccessMode,
    CapabilitySet,
    ExecResult,
    FsCapability,
    Policy,
    ProxyHandle,
    QueryContext,
    ResolvedPolicy,
    SupportInfo,
    apply,
    apply_unlink_overrides,
    deny_paths_of,
    embedded_policy_json,
    enforce_deny_paths,
    is_supported,
    load_embedded_policy,
    load_policy,
    sandboxed_exec,
    support_info,
    validate_deny_overlaps,
)
from ._errors import ProgramNotFoundError
from ._source import CapabilitySource
from ._state import SandboxState

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
    "AccessMode", "CapabilitySet", "ExecResult", "ExternalProxyConfig", "FsCapability",
    "InjectMode", "ProxyConfig", "ProxyHandle",
    "QueryContext", "RouteConfig", "SandboxState", "SupportInfo", "apply", "is_supported",
    "sandboxed_exec", "start_proxy", "support_info",
    "CapabilitySource", "ProgramNotFoundError",
    "Policy", "ResolvedPolicy", "apply_unlink_overrides", "embedded_policy_json",
    "load_embedded_policy", "load_policy", "validate_deny_overlaps", "enforce_deny_paths",
    "deny_paths_of",
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


class InjectMode(enum.Enum):
    """Where a route puts the credential (libnono's nono_inject_mode)."""

    HEADER = 0       # inject_header: credential_format with "{}" = the secret
    URL_PATH = 1     # path_pattern "{}" (the placeholder) -> path_replacement "{}" (the secret)
    QUERY_PARAM = 2  # ?query_param_name=secret
    BASIC_AUTH = 3   # Authorization: Basic base64(secret), the secret being "user:password"

    def __str__(self):
        return self.name.lower()


@dataclass(frozen=True)
class RouteConfig:
    """A credential route: plain-HTTP requests for ``http://PROXY/prefix/…`` go to ``upstream/…``
    over TLS (verified against the system trust store, or ``tls_ca``), with the real credential
    injected in the ``inject_mode`` place after the client's own is stripped there.

    The secret comes from ``credential_key`` — ``env://VAR`` (this process's environment),
    ``file://PATH``, or ``keyring://NAME`` / a bare name (the desktop secret service's item
    service=nono username=NAME, as the Rust nono stores them; ``keyring://SERVICE/ACCOUNT`` names
    both; ``?decode=go-keyring`` decodes an item a Go program wrote, as the Rust nono does; a clear error where no secret service runs) — read when the proxy starts, or from ``credential`` (the value itself; never shown by
    repr). The command gets only a per-session placeholder in ``env_var`` (default: the key's name
    upper-cased) and ``{PREFIX}_BASE_URL`` (ProxyHandle.credential_env_vars()); a request is
    forwarded only when it presents that placeholder. ``endpoint_rules`` ((method, path-pattern)
    pairs, "*" one segment, "**" any rest) allow only those endpoints (403 otherwise).

    The upstream host:port is also allowed for CONNECT tunnels (nono-py's behaviour; a tunnel
    carries no injected credential); plain absolute-form HTTP to it is refused (403 connect-only)
    unless ``allowed_hosts`` allows it too.
    """

    prefix: str
    upstream: str
    credential_key: str = None
    inject_mode: InjectMode = InjectMode.HEADER
    inject_header: str = "Authorization"
    credential_format: str = "Bearer {}"
    path_pattern: str = None
    path_replacement: str = None
    query_param_name: str = None
    env_var: str = None
    endpoint_rules: tuple = None
    tls_ca: str = None
    tls_client_cert: str = None
    tls_client_key: str = None
    credential: str = field(default=None, repr=False)  # the secret itself (kept out of repr)

    def __post_init__(self):
        _check_str("prefix", self.prefix)
        _check_str("upstream", self.upstream)
        _check_str("credential_key", self.credential_key, allow_none=True)
        _check_str("inject_header", self.inject_header)
        _check_str("credential_format", self.credential_format)
        for name in ("path_pattern", "path_replacement", "query_param_name", "env_var", "tls_ca",
                     "tls_client_cert", "tls_client_key", "credential"):
            _check_str(name, getattr(self, name), allow_none=True)
        if not isinstance(self.inject_mode, InjectMode):
            raise TypeError(f"inject_mode must be an InjectMode, not {type(self.inject_mode).__name__}")
        rules = () if self.endpoint_rules is None else tuple(self.endpoint_rules)
        if isinstance(self.endpoint_rules, (str, bytes)):
            raise TypeError("endpoint_rules must be a list of (method, path) pairs")
        for rule in rules:
            if not (isinstance(rule, tuple) and len(rule) == 2):
                raise TypeError("endpoint_rules entries must be (method, path) pairs")
            _check_str("endpoint rule method", rule[0])
            _check_str("endpoint rule path", rule[1])
        object.__setattr__(self, "endpoint_rules", rules)
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

    def _native_args(self):
        hdr = self.inject_mode is InjectMode.HEADER
        return (self.prefix, self.upstream, self.credential_key, self.credential, self.inject_mode.value,
                self.inject_header if hdr else None, self.credential_format if hdr else None,
                self.path_pattern, self.path_replacement, self.query_param_name, self.env_var,
                self.tls_ca, self.tls_client_cert, self.tls_client_key, self.endpoint_rules)

    @property
    def upstream_host(self):
        return self._target[0]

    @property
    def upstream_port(self):
        return self._target[1]


@dataclass(frozen=True)
class ExternalProxyConfig:
    """An external (corporate) HTTP proxy that allowed traffic leaves through.

    ``address`` is "host:port" or "http://[user[:password]@]host:port" (credentials are sent as
    Basic Proxy-Authorization and stay in the proxy's memory; the repr hides them). The proxy's
    own allowlist and internal/metadata checks still apply first; then each connection is a
    CONNECT through this proxy, except to ``bypass_hosts`` (allowlist pattern syntax), which are
    dialled directly. Validated by libnono when the ProxyConfig is built.
    """

    address: str
    bypass_hosts: tuple = ()

    def __post_init__(self):
        _check_str("address", self.address)
        object.__setattr__(self, "bypass_hosts", _str_tuple("bypass_hosts", self.bypass_hosts))

    def __repr__(self):
        u = urllib.parse.urlsplit(self.address if "://" in self.address else "http://" + self.address)
        shown = self.address
        if u.password is not None or u.username is not None:
            shown = f"{u.scheme}://***@{u.hostname}" + (f":{u.port}" if u.port else "")
        return f"ExternalProxyConfig(address={shown!r}, bypass_hosts={list(self.bypass_hosts)!r})"


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
    external_proxy: ExternalProxyConfig = None
    intercept_ca_dir: str = None

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
        # A route's upstream host:port is also a CONNECT-only destination, as in nono-py
        # (nono_proxy_config_allow_host_connect_only); routed requests are served by the route.
        targets = tuple(f"{r.upstream_host}:{r.upstream_port}" for r in routes)
        native = _nono._ProxyConfig(hosts, internal, self.bind_addr, self.bind_port,
                                    self.max_connections, self.allow_all_hosts, targets,
                                    tuple(r._native_args() for r in routes))
        if self.external_proxy is not None:
            if not isinstance(self.external_proxy, ExternalProxyConfig):
                raise TypeError("external_proxy must be an ExternalProxyConfig, not "
                                f"{type(self.external_proxy).__name__}")
            native._set_external_proxy(self.external_proxy.address, self.external_proxy.bypass_hosts)
        if self.intercept_ca_dir is not None:
            # The session CA's certificate and bundle are written there at start (the key stays
            # in the proxy); a route's host is then intercepted (libnono's TLS interception).
            native._set_intercept_ca_dir(self.intercept_ca_dir)
        object.__setattr__(self, "allowed_hosts", list(hosts))  # a list, as nono-py's
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


def __dir__():
    # Namespace hygiene: dir(nono_py) lists the API (and dunders), not the modules this file
    # imports for its own use (re, urllib, ipaddress, dataclass).
    return sorted(set(__all__) | {k for k in globals() if k.startswith("__")})
