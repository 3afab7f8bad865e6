"""Fixtures for end-to-end tests: the real `faceledger` binary against a real PostgreSQL."""
import base64
import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

CHECKOUT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BIN = os.path.abspath(os.environ.get("FACELEDGER_BIN", os.path.join(CHECKOUT, ".build/debug/faceledger")))
ADMIN_URL = os.environ.get("FACELEDGER_TEST_DATABASE_URL", "")


def psql(conninfo, sql):
    """Runs SQL with psql and returns its unaligned, tuples-only output."""
    return subprocess.run(["psql", conninfo, "-qAtc", sql], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(autouse=True)
def working_directory(tmp_path, monkeypatch):
    """Every test runs in a temporary directory of its own: a command run without --data-dir or
    --credentials-file (as users do) writes its `.faceledger/` there, never into the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True, scope="session")
def master_key(tmp_path_factory):
    """Every command of the run shares one master key (FACELEDGER_MASTER_KEY_FILE), as the servers and
    commands of one deployment do — module-scoped servers included; returns its file. A test that
    changes keys works on a copy of its own."""
    path = tmp_path_factory.mktemp("keys") / "master-key"
    path.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    path.chmod(0o600)
    os.environ["FACELEDGER_MASTER_KEY_FILE"] = str(path)
    yield str(path)
    os.environ.pop("FACELEDGER_MASTER_KEY_FILE", None)


@pytest.fixture(autouse=True, scope="session")
def checkout_untouched():
    """Fails the run if the tests created a `.faceledger/` in the checkout (one a developer's own
    `scripts/serve` made before the run is left alone)."""
    path = os.path.join(CHECKOUT, ".faceledger")
    existed = os.path.exists(path)
    yield
    assert existed or not os.path.exists(path), f"a test wrote into the checkout: {path}"


@pytest.fixture
def faceledger():
    assert os.path.exists(BIN), f"build the binary first: {BIN}"
    return os.path.abspath(BIN)


@contextlib.contextmanager
def fresh_database():
    """A fresh, empty database on the test server (its conninfo); dropped afterwards."""
    assert ADMIN_URL, "FACELEDGER_TEST_DATABASE_URL is not set (scripts/test sets it)"
    name = "faceledger_e2e_" + uuid.uuid4().hex
    psql(ADMIN_URL, f"CREATE DATABASE {name}")
    try:
        yield f"{ADMIN_URL} dbname={name}"
    finally:
        psql(ADMIN_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def temporary_data_dir():
    """A data directory that the `postgres` system user can enter (for the embedded cluster as root)."""
    path = tempfile.mkdtemp(prefix="faceledger-e2e-")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def database_url():
    with fresh_database() as url:
        yield url


@pytest.fixture
def data_dir():
    with temporary_data_dir() as path:
        yield path


# Keys of the API tests: ACCESS_KEY_ID SECRET PRINCIPAL ROLE [rate=N]
KEYS = {
    "admin": ("AKIDADMIN0000000001", "admin-secret-0000000000000000000000000001", "alice", "admin"),
    "writer": ("AKIDWRITER000000001", "writer-secret-000000000000000000000000001", "bob", "writer"),
    "auditor": ("AKIDAUDITOR00000001", "auditor-secret-00000000000000000000000001", "carol", "auditor"),
    "slow": ("AKIDSLOW00000000001", "slow-secret-0000000000000000000000000001", "dave", "writer", "rate=2"),
    "rogue": ("AKIDROGUE0000000001", "rogue-secret-000000000000000000000000001", "mallory", "writer"),
}


def write_credentials(data_dir):
    """A credentials file with the keys above, in `data_dir`; returns its path."""
    path = os.path.join(data_dir, "credentials-test")
    with open(path, "w") as f:
        for fields in KEYS.values():
            f.write(" ".join(fields) + "\n")
    return path


@pytest.fixture
def api(faceledger, database_url, data_dir):
    """A running `faceledger serve` on a fresh database, with the keys above."""
    from api import Api
    from server import Server
    credentials = write_credentials(data_dir)
    with Server(faceledger, "--database-url", database_url, "--credentials-file", credentials) as server:
        yield Api(server, database_url)
        server.stop()
