"""pytest fixtures shared by the tests that run a local HTTPS upstream: `pki` (a test CA and a
server certificate made with openssl, once per module: {"ca", "cert", "key"}) and `up` (a
TLSUpstream with that certificate, stopped after the test). Import both names into a test module."""
import pytest

from tls_upstream import TLSUpstream, make_ca


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca, cert, key = make_ca(tmp_path_factory.mktemp("pki"))
    return {"ca": ca, "cert": cert, "key": key}


@pytest.fixture
def up(pki):
    u = TLSUpstream(pki["cert"], pki["key"])
    yield u
    u.stop()
