#!/usr/bin/env bash
# Run a command inside Debian 12's 6.1 kernel under qemu (TCG) with the project's build output at its
# host paths. Exit status: the command's; 77 when qemu or the kernel is unavailable; 125 when the
# guest never reported a status (boot failure or timeout; the console is printed).
#   tests/vm/run-in-vm.sh [--build-dir DIR] [--timeout S] [--no-python] [--console] -- CMD [ARGS...]
# NONO_BUILD_DIR is the default build dir. The command runs in the source root.
exec /usr/bin/python3 "$(dirname "$0")/vm.py" run "$@"
