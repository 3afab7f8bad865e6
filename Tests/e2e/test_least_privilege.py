"""`serve` as the restricted role the migrations create: it works, and it cannot change the log."""
import subprocess
import time
import uuid

import pytest

from api import Api
from conftest import ADMIN_URL, psql, write_credentials
from server import Server


@pytest.fixture
def service_login(database_url):
    """A login role that is a member of faceledger_service, and its conninfo over TCP (password)."""
    name = "svc_" + uuid.uuid4().hex[:12]
    psql(ADMIN_URL, f"CREATE ROLE {name} LOGIN PASSWORD 'service-password' IN ROLE faceledger_service")
    dbname = database_url.rsplit("dbname=", 1)[1]
    yield f"host=127.0.0.1 port=5432 dbname={dbname} user={name} password=service-password"
    psql(ADMIN_URL, f"DROP ROLE IF EXISTS {name}")


@pytest.fixture
def migrated(faceledger, database_url):
    subprocess.run([faceledger, "migrate", "--database-url", database_url], check=True, capture_output=True)
    return database_url


def as_service(conninfo, sql):
    return subprocess.run(["psql", conninfo, "-qAtc", sql], capture_output=True, text=True)


def test_serve_runs_as_the_service_role_and_the_role_cannot_change_the_log(faceledger, migrated, data_dir, request):
    login = request.getfixturevalue("service_login")
    with Server(faceledger, "--database-url", login, "--credentials-file", write_credentials(data_dir)) as server:
        api = Api(server, migrated)
        c = api.client()
        c.create_collection(CollectionId="c")
        c.create_user(CollectionId="c", UserId="u", ClientRequestToken="t")
        faces = api.import_faces("c", [[1, 0], [1, 0.1]])
        c.associate_faces(CollectionId="c", UserId="u", FaceIds=faces, UserMatchThreshold=0)
        # The owner rebuilds the read models while the restricted server serves: it keeps projecting.
        subprocess.run([faceledger, "rebuild", "--database-url", migrated], check=True, capture_output=True)
        c.disassociate_faces(CollectionId="c", UserId="u", FaceIds=faces[:1])
        deadline = time.monotonic() + 60
        while {f["FaceId"] for f in c.list_faces(CollectionId="c", UserId="u")["Faces"]} != set(faces[1:]):
            assert time.monotonic() < deadline, "the restricted server's projector did not fold into the rebuilt tables"
            time.sleep(0.05)
        assert server.stop() == 0

    refused = {
        "disable the append-only triggers": "ALTER TABLE events DISABLE TRIGGER ALL",
        "delete from the log": "DELETE FROM events",
        "update the log": "UPDATE events SET principal = 'mallory'",
        "truncate the log": "TRUNCATE events",
        "insert around append_events()": "INSERT INTO events (collection_id, stream, version, type, schema_version, data, "
                                          "principal, request_id, operation, recorded_at, hash) "
                                          "VALUES ('c', 's', 1, 't', 1, '{}', 'p', 'r', 'o', now(), '\\x00')",
        "create a table": "CREATE TABLE scratch (x int)",
    }
    for what, sql in refused.items():
        result = as_service(login, sql)
        assert result.returncode != 0, f"the service role could {what}"
        assert "permission denied" in result.stderr or "must be owner" in result.stderr, (what, result.stderr)
    # Reading is allowed, and the log is intact.
    assert as_service(login, "SELECT count(*) FROM events").returncode == 0
    assert subprocess.run([faceledger, "verify", "--database-url", migrated], capture_output=True).returncode == 0
