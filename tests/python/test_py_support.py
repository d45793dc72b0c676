"""is_supported() / support_info(): what this kernel can enforce, as the library probes it."""
import json

from nono_py_testlib import HERE, run_py


def test_support_info_fields(nono_py):
    info = nono_py.support_info()
    assert type(info).__name__ == "SupportInfo"
    assert info.platform == "linux"
    assert isinstance(info.is_supported, bool) and info.is_supported == nono_py.is_supported()
    assert info.is_supported == (info.landlock_fs and info.seccomp_filter)
    assert isinstance(info.details, str) and "landlock" in info.details.lower()
    is_supported, platform, details = info  # tuple of the three headline fields
    assert (is_supported, platform) == (info.is_supported, "linux")
    assert info.kernel_release and info.kernel_release in info.details
    assert info.landlock_abi == min(info.landlock_abi_kernel, info.landlock_abi_cap or 10**6)
    assert info.landlock_fs == (info.landlock_abi >= 1)
    assert info.landlock_tcp == (info.landlock_abi >= 4)
    assert info.landlock_scopes == (info.landlock_abi >= 6)
    for f in ("seccomp_filter", "seccomp_user_notif", "pidfd_getfd", "wait_killable_recv", "sync_wakeup",
              "x86_64", "landlock_refer", "landlock_truncate", "landlock_ioctl_dev", "landlock_log_flags"):
        assert isinstance(getattr(info, f), bool), f


def test_this_machine_is_supported(nono_py):
    # The team machine (6.18) and the VM tier (Debian's 6.1) both have what the library needs.
    info = nono_py.support_info()
    assert nono_py.is_supported() is True
    assert info.landlock_abi_kernel >= 1 and info.seccomp_user_notif and info.pidfd_getfd


def test_capped_abi_is_reported(nono_py):
    kernel = nono_py.support_info().landlock_abi_kernel
    code = (f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import nono_py\n"
            "i = nono_py.support_info()\n"
            "print(json.dumps([i.landlock_abi, i.landlock_abi_cap, i.landlock_tcp, i.landlock_truncate]))\n")
    r = run_py(code, env_extra={"NONO_MAX_LANDLOCK_ABI": "3"})
    assert r.returncode == 0, r.stderr
    abi = min(kernel, 3)
    assert json.loads(r.stdout) == [abi, 3, False, abi >= 3]
