"""CapabilitySource: where a filesystem grant came from (FsCapability.source).

Kinds are the library's (nono_source_name): "user" (the caller, the default), "group" (a named
policy group) and "system" (a set nono adds itself, e.g. the CLI's system paths). The source is
shown, never used to decide access.
"""

__all__ = ["CapabilitySource"]


class CapabilitySource:
    """Source/origin of a capability grant: ``user()``, ``group(name)`` or ``system()``."""

    __slots__ = ("_kind", "_name")

    def __init__(self, *args, **kwargs):
        raise TypeError("use CapabilitySource.user(), .group(name) or .system()")

    @classmethod
    def _make(cls, kind, name=None):
        obj = object.__new__(cls)
        object.__setattr__(obj, "_kind", kind)
        object.__setattr__(obj, "_name", name)
        return obj

    @staticmethod
    def user():
        """A grant made by the caller."""
        return CapabilitySource._make("user")

    @staticmethod
    def group(name):
        """A grant resolved from the policy group ``name``."""
        if not isinstance(name, str):
            raise TypeError(f"group name must be a str, not {type(name).__name__}")
        if not name or len(name) > 128 or not name.isprintable():
            raise ValueError("group name must be 1..128 printable characters")
        return CapabilitySource._make("group", name)

    @staticmethod
    def system():
        """A grant nono adds itself (system paths a program needs to start)."""
        return CapabilitySource._make("system")

    @property
    def kind(self):
        """'user', 'group' or 'system'."""
        return self._kind

    @property
    def name(self):
        """The group's name for a group source, else None."""
        return self._name

    def __setattr__(self, key, value):
        raise AttributeError("CapabilitySource is immutable")

    def __str__(self):
        return f"group:{self._name}" if self._kind == "group" else self._kind

    def __repr__(self):
        return f"CapabilitySource({self})"

    def __eq__(self, other):
        if not isinstance(other, CapabilitySource):
            return NotImplemented
        return (self._kind, self._name) == (other._kind, other._name)

    def __hash__(self):
        return hash((self._kind, self._name))

    def __reduce__(self):
        return (_from_lib, (self._kind, self._name))


def _from_lib(kind, name=None):
    """The extension's constructor: kind from nono_source_name, name for a group."""
    if kind not in ("user", "group", "system") or (kind == "group") != (name is not None):
        raise ValueError(f"unknown grant source {kind!r}")
    return CapabilitySource._make(kind, name)
