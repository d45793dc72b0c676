"""Exception types of nono_py beyond the built-in ones."""

__all__ = ["ProgramNotFoundError"]


class ProgramNotFoundError(FileNotFoundError, RuntimeError):
    """sandboxed_exec(): the program was not found (in PATH, or at the path given).

    Both a FileNotFoundError (errno ENOENT, like subprocess) and a RuntimeError (as nono-py raises),
    so either ``except`` clause catches it.
    """
