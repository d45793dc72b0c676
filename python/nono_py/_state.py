"""SandboxState: a serialisable snapshot of a CapabilitySet, in nono-py's JSON.

    {"fs": [{"original": ..., "resolved": ..., "access": "read"|"write"|"readwrite",
             "is_file": false, "source": "user"|"system"|"group:NAME"}],
     "net_blocked": true}

plus keys of ours that are optional on input and written only when they say something nono-py's
format cannot: "network" ({"mode": "proxy-only", "proxy_port": P, "proxy_address": A}),
"unix_sockets", "bind_ports" and "platform_rules". Either side reads the other's documents.

Parsing is strict (unknown keys, wrong types and bad values are ValueError) but does not touch the
filesystem: paths are checked by ``to_caps()``, which rebuilds the set through libnono (a missing
path is FileNotFoundError, a path that now resolves elsewhere is ValueError).
"""

import json as _json

from . import _nono

__all__ = ["SandboxState"]

# nono writes "readwrite"; any case and "read_write", "read-write", "read+write" (serde's
# "ReadWrite", ours, AccessMode's str) are read too.
_ACCESS_OUT = {1: "read", 2: "write", 3: "readwrite"}
_ACCESS_IN = {"read": 1, "write": 2, "readwrite": 3}
_LIB_ACCESS = {1: "read", 2: "write", 3: "read_write"}
_TOP_KEYS = {"fs", "net_blocked", "network", "unix_sockets", "bind_ports", "platform_rules",
             "deny", "internal", "user_namespaces"}
_FS_KEYS = {"original", "resolved", "access", "is_file", "source"}
_NET_KEYS = {"mode", "proxy_port", "proxy_address"}


def _fail(msg):
    raise ValueError(f"invalid sandbox state: {msg}")


def _text(value, where):
    if not isinstance(value, str):
        _fail(f"{where}: expected a string")
    if "\0" in value:
        _fail(f"{where}: NUL byte")
    return value


def _source(value, where):
    src = _text(value, where)
    if src in ("user", "system") or (src.startswith("group:") and len(src) > 6):
        return src
    _fail(f"{where}: expected \"user\", \"system\" or \"group:NAME\"")


def _fs_entry(e, i):
    where = f"fs[{i}]"
    if not isinstance(e, dict):
        _fail(f"{where}: expected an object")
    unknown = sorted(set(e) - _FS_KEYS)
    if unknown:
        _fail(f"{where}: unknown key {unknown[0]!r}")
    for k in ("original", "resolved", "access", "is_file"):
        if k not in e:
            _fail(f"{where}.{k}: missing")
    out = {"original": _text(e["original"], f"{where}.original"),
           "resolved": _text(e["resolved"], f"{where}.resolved")}
    if not out["resolved"].startswith("/"):
        _fail(f"{where}.resolved: expected an absolute path")
    spelled = _text(e["access"], f"{where}.access")
    access = _ACCESS_IN.get(spelled.lower().replace("_", "").replace("-", "").replace("+", ""))
    if access is None:
        _fail(f"{where}.access: expected \"read\", \"write\" or \"readwrite\"")
    if not isinstance(e["is_file"], bool):
        _fail(f"{where}.is_file: expected true or false")
    out["access"] = access
    out["is_file"] = e["is_file"]
    out["source"] = _source(e["source"], f"{where}.source") if "source" in e else "user"
    return out


def _network(net, net_blocked):
    if not isinstance(net, dict):
        _fail("network: expected an object")
    unknown = sorted(set(net) - _NET_KEYS)
    if unknown:
        _fail(f"network: unknown key {unknown[0]!r}")
    mode = net.get("mode")
    if mode not in ("allowed", "blocked", "proxy-only"):
        _fail("network.mode: expected \"allowed\", \"blocked\" or \"proxy-only\"")
    if (mode != "allowed") != net_blocked:
        _fail(f"network.mode {mode!r} contradicts net_blocked={str(net_blocked).lower()}")
    port = net.get("proxy_port", 0)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        _fail("network.proxy_port: expected an integer 0..65535")
    if mode == "proxy-only" and port == 0:
        _fail("network.proxy_port: proxy-only needs the proxy's port")
    out = {"mode": mode, "proxy_port": port}
    if "proxy_address" in net:
        out["proxy_address"] = _text(net["proxy_address"], "network.proxy_address")
    return out


def _str_list(value, where):
    if not isinstance(value, list):
        _fail(f"{where}: expected an array")
    return [_text(v, f"{where}[{i}]") for i, v in enumerate(value)]


# Keys of libnono's own JSON that a state carries through unchanged (deny paths, internal grants,
# user namespaces): never dropped on a round trip.
_LIB_PASSTHROUGH = ("deny", "internal", "user_namespaces")


class SandboxState:
    """Serializable snapshot of a CapabilitySet: ``from_caps``, ``to_json``, ``from_json``,
    ``to_caps``, ``net_blocked``."""

    __slots__ = ("_fs", "_net_blocked", "_extra")

    def __init__(self, *args, **kwargs):
        raise TypeError("use SandboxState.from_caps(caps) or SandboxState.from_json(text)")

    @classmethod
    def _make(cls, fs, net_blocked, extra):
        obj = object.__new__(cls)
        obj._fs, obj._net_blocked, obj._extra = fs, net_blocked, extra
        return obj

    @staticmethod
    def from_caps(caps):
        """Snapshot a CapabilitySet (later changes to ``caps`` do not show)."""
        if not isinstance(caps, _nono.CapabilitySet):
            raise TypeError(f"from_caps() needs a CapabilitySet, not {type(caps).__name__}")
        fs = [{"original": c.original, "resolved": c.resolved, "access": int(c.access),
               "is_file": c.is_file, "source": str(c.source)} for c in caps.fs_capabilities()]
        extra = {}
        lib = _json.loads(_nono.SandboxState.from_caps(caps).to_json())
        if caps.network_mode == "proxy-only":
            extra["network"] = {"mode": "proxy-only", "proxy_port": lib["network"]["proxy_port"],
                                "proxy_address": lib["network"].get("proxy_address", "127.0.0.1")}
        if caps.unix_sockets:
            extra["unix_sockets"] = list(caps.unix_sockets)
        if lib.get("bind_ports"):
            extra["bind_ports"] = list(lib["bind_ports"])
        if caps.platform_rules:
            extra["platform_rules"] = list(caps.platform_rules)
        for k in _LIB_PASSTHROUGH:  # libnono's own keys, carried as they are
            if k in lib:
                extra[k] = lib[k]
        return SandboxState._make(fs, caps.is_network_blocked, extra)

    @staticmethod
    def from_json(json):
        """Parse a state (nono-py's format, with our optional keys). ValueError when invalid."""
        if isinstance(json, (bytes, bytearray)):
            json = bytes(json).decode("utf-8")
        if not isinstance(json, str):
            raise TypeError(f"from_json() needs str or bytes, not {type(json).__name__}")
        try:
            doc = _json.loads(json, object_pairs_hook=_no_duplicates)
        except ValueError as e:
            raise ValueError(f"Invalid JSON: {e}") from None
        if not isinstance(doc, dict):
            _fail("expected a JSON object")
        unknown = sorted(set(doc) - _TOP_KEYS)
        if unknown:
            _fail(f"unknown key {unknown[0]!r}")
        for k in ("fs", "net_blocked"):
            if k not in doc:
                _fail(f"missing field {k!r}")
        if not isinstance(doc["fs"], list):
            _fail("fs: expected an array")
        if not isinstance(doc["net_blocked"], bool):
            _fail("net_blocked: expected true or false")
        fs = [_fs_entry(e, i) for i, e in enumerate(doc["fs"])]
        extra = {}
        if "network" in doc:
            extra["network"] = _network(doc["network"], doc["net_blocked"])
        for k in ("unix_sockets", "platform_rules", "deny", "internal"):
            if k in doc:
                extra[k] = _str_list(doc[k], k)
        if "user_namespaces" in doc:
            if not isinstance(doc["user_namespaces"], bool):
                _fail("user_namespaces: expected true or false")
            extra["user_namespaces"] = doc["user_namespaces"]
        if "bind_ports" in doc:
            ports = doc["bind_ports"]
            if not isinstance(ports, list) or any(
                    isinstance(p, bool) or not isinstance(p, int) or not 0 < p < 65536
                    for p in ports):
                _fail("bind_ports: expected an array of ports 1..65535")
            extra["bind_ports"] = list(ports)
        return SandboxState._make(fs, doc["net_blocked"], extra)

    def to_json(self):
        """nono-py's JSON, plus our keys where they add something."""
        doc = {"fs": [{"original": e["original"], "resolved": e["resolved"],
                       "access": _ACCESS_OUT[e["access"]], "is_file": e["is_file"],
                       "source": e["source"]} for e in self._fs],
               "net_blocked": self._net_blocked}
        doc.update(self._extra)
        return _json.dumps(doc)

    def to_caps(self):
        """A new CapabilitySet; every path is checked now (FileNotFoundError when missing,
        ValueError when it no longer resolves to the recorded place)."""
        net = self._extra.get("network") or {"mode": "blocked" if self._net_blocked else "allowed"}
        lib_net = {"mode": net["mode"].replace("-", "_"), "proxy_port": net.get("proxy_port", 0)}
        if "proxy_address" in net:
            lib_net["proxy_address"] = net["proxy_address"]
        lib = {"version": 1,
               "fs": [{"path": e["resolved"], "access": _LIB_ACCESS[e["access"]],
                       "kind": "file" if e["is_file"] else "dir", "source": e["source"]}
                      for e in self._fs],
               "network": lib_net,
               "unix_sockets": self._extra.get("unix_sockets", []),
               "bind_ports": self._extra.get("bind_ports", [])}
        if self._extra.get("platform_rules"):
            lib["platform_rules"] = self._extra["platform_rules"]
        for k in _LIB_PASSTHROUGH:
            if k in self._extra:
                lib[k] = self._extra[k]
        caps = _nono.SandboxState.from_json(_json.dumps(lib)).to_caps()
        for e, c in zip(self._fs, caps.fs_capabilities()):
            if c.resolved != e["resolved"]:
                raise ValueError(f"sandbox state path drifted: {e['resolved']} now resolves to "
                                 f"{c.resolved}")
        return caps

    @property
    def net_blocked(self):
        """True when the network is blocked (or proxy-only) in this state."""
        return self._net_blocked

    def __repr__(self):
        mode = self._extra.get("network", {}).get("mode")
        net = f", network={mode}" if mode == "proxy-only" else ""
        return f"SandboxState(fs={len(self._fs)}, net_blocked={self._net_blocked}{net})"


def _no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            _fail(f"duplicate key {k!r}")
        seen[k] = v
    return seen
