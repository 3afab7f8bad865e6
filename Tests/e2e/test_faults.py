"""Faults: a killed server, a database that goes away, a full command queue, an event it cannot read."""
import json
import os
import subprocess
import time

import botocore
import pytest

from api import Api
from conftest import psql, write_credentials
from server import Server


def pg_ctl(data_dir, *args):
    bindir = sorted(os.listdir("/usr/lib/postgresql"), key=int)[-1]
    cluster = os.path.join(data_dir, "pg")
    command = [f"/usr/lib/postgresql/{bindir}/bin/pg_ctl", "-D", cluster, "-l", os.path.join(cluster, "postgres.log"), "-w", *args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True)


def test_nothing_acknowledged_is_lost_when_the_server_is_killed(faceledger, data_dir):
    credentials = write_credentials(data_dir)
    with Server(faceledger, "--data-dir", data_dir, "--credentials-file", credentials) as server:
        api = Api(server, None)
        c = api.client()
        c.create_collection(CollectionId="c")
        c.create_user(CollectionId="c", UserId="u")
        faces = api.import_faces("c", [[1, i / 100] for i in range(10)])
        acknowledged = c.associate_faces(CollectionId="c", UserId="u", FaceIds=faces[:5], ClientRequestToken="before-kill")
        server.process.kill()
        server.process.wait()
    with Server(faceledger, "--data-dir", data_dir, "--credentials-file", credentials) as server:
        c = Api(server, None).client()
        assert {f["FaceId"] for f in acknowledged["AssociatedFaces"]} == set(faces[:5])
        # The new projector takes the dead one's lease and folds what it had not: bounded wait.
        deadline = time.monotonic() + 60
        while {f["FaceId"] for f in c.list_faces(CollectionId="c", UserId="u")["Faces"]} != set(faces[:5]):
            assert time.monotonic() < deadline, "the acknowledged association never showed after the restart"
            time.sleep(0.05)
        # The retry of the acknowledged request gets its stored response and changes nothing.
        retried = c.associate_faces(CollectionId="c", UserId="u", FaceIds=faces[:5], ClientRequestToken="before-kill")
        assert retried["AssociatedFaces"] == acknowledged["AssociatedFaces"]
        assert server.stop() == 0


def test_an_unreachable_database_is_503_and_the_server_recovers(faceledger, data_dir):
    credentials = write_credentials(data_dir)
    with Server(faceledger, "--data-dir", data_dir, "--credentials-file", credentials) as server:
        api = Api(server, None)
        c = api.client(retries={"total_max_attempts": 1})
        c.create_collection(CollectionId="c")
        pg_ctl(data_dir, "-m", "immediate", "stop")
        for call in (lambda: c.list_collections(), lambda: c.create_user(CollectionId="c", UserId="u")):
            with pytest.raises(botocore.exceptions.ClientError) as error:
                call()
            assert error.value.response["Error"]["Code"] == "ServiceUnavailableException"
            assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
            assert "postgres" not in error.value.response["Error"]["Message"].lower()
        pg_ctl(data_dir, "start")
        c.create_user(CollectionId="c", UserId="u")
        assert c.list_users(CollectionId="c")["Users"] == [{"UserId": "u", "UserStatus": "CREATED"}]
        assert server.stop() == 0


def test_a_full_command_queue_is_provisioned_throughput_exceeded(faceledger, database_url, data_dir):
    # A queue of 0 is always full: every command is refused at once, reads still work.
    credentials = write_credentials(data_dir)
    with Server(faceledger, "--database-url", database_url, "--credentials-file", credentials,
                env={"FACELEDGER_MAX_PENDING_COMMANDS": "0"}) as server:
        c = Api(server, database_url).client(retries={"total_max_attempts": 1})
        with pytest.raises(c.exceptions.ProvisionedThroughputExceededException):
            c.create_collection(CollectionId="c")
        assert c.list_collections()["CollectionIds"] == []
        assert server.stop() == 0


def test_an_event_this_version_cannot_read_is_an_internal_error_that_reveals_nothing(faceledger, database_url, data_dir):
    credentials = write_credentials(data_dir)
    with Server(faceledger, "--database-url", database_url, "--credentials-file", credentials) as server:
        c = Api(server, database_url).client(retries={"total_max_attempts": 1})
        c.create_collection(CollectionId="c")
        # An event from a newer version (appends are allowed to anyone with access to the database).
        psql(database_url, """SELECT append_events('c', '{}', '{}', '{collection}', '{FromTheFuture}', '{1}', '{"{}"}',
                                                   '{NULL}', '{someone}', '{r}', '{NULL}', '{Future}', '{NULL}', '{NULL}')""")
        with pytest.raises(c.exceptions.InternalServerError) as error:
            c.create_user(CollectionId="c", UserId="u")
        message = error.value.response["Error"]["Message"]
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert "FromTheFuture" not in message and "decode" not in message.lower() and "sql" not in message.lower()
        assert server.stop() == 0


def test_a_database_crash_under_load_loses_no_acknowledged_request(faceledger, data_dir):
    """Eight clients write to four collections (so batches span collections and share one WAL flush);
    PostgreSQL is stopped in immediate mode (a crash: WAL not yet written is gone) in the middle. Every
    request acknowledged before it is in the ledger once the database is back."""
    import threading
    credentials = write_credentials(data_dir)
    collections = [f"c{n}" for n in range(4)]
    acknowledged = []
    lock = threading.Lock()
    with Server(faceledger, "--data-dir", data_dir, "--credentials-file", credentials) as server:
        api = Api(server, None)
        for collection in collections:
            api.client().create_collection(CollectionId=collection)
        stop = threading.Event()

        def writer(n):
            c = api.client(retries={"total_max_attempts": 1})
            i = 0
            while not stop.is_set():
                collection, user = collections[(n + i) % len(collections)], f"u-{n}-{i}"
                try:
                    c.create_user(CollectionId=collection, UserId=user, ClientRequestToken=f"t-{n}-{i}")
                except Exception:
                    return  # the database went away: this and later requests fail
                with lock:
                    acknowledged.append((collection, user))
                i += 1
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 300:  # well under way
            assert time.monotonic() < deadline, "the load never got going"
            time.sleep(0.01)
        pg_ctl(data_dir, "-m", "immediate", "stop")
        stop.set()
        for t in threads:
            t.join(60)
        pg_ctl(data_dir, "start")
        # The log itself, read by the operator's tool: what exists now, whatever the projector has folded.
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
        present = set()
        for collection in collections:
            state = subprocess.run([faceledger, "state", "--data-dir", data_dir, "--collection", collection, "--as-of", now, "--json"],
                                   capture_output=True, text=True, timeout=120)
            assert state.returncode == 0, state.stderr
            present |= {(collection, user["UserId"]) for user in json.loads(state.stdout)["Users"]}
        missing = [entry for entry in acknowledged if entry not in present]
        assert missing == [], f"{len(missing)} of {len(acknowledged)} acknowledged users were lost"
        assert server.stop() == 0


def test_sigterm_under_load_loses_no_acknowledged_request(faceledger, database_url, data_dir):
    """Eight clients write as fast as they can; SIGTERM lands in the middle. The server exits 0, and every
    request it acknowledged is in the ledger after a restart (each replays with its token)."""
    import threading
    credentials = write_credentials(data_dir)
    acknowledged = []
    lock = threading.Lock()
    with Server(faceledger, "--database-url", database_url, "--credentials-file", credentials) as server:
        api = Api(server, database_url)
        api.client().create_collection(CollectionId="c")
        stop = threading.Event()

        def writer(n):
            c = api.client(retries={"total_max_attempts": 1})
            i = 0
            while not stop.is_set():
                user, token = f"u-{n}-{i}", f"t-{n}-{i}"
                try:
                    c.create_user(CollectionId="c", UserId=user, ClientRequestToken=token)
                except Exception:
                    stop.set()  # the server is going away: refused, reset or closed
                    return
                with lock:
                    acknowledged.append((user, token))
                i += 1
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 200:  # well under way
            assert time.monotonic() < deadline, "the load never got going"
            time.sleep(0.01)
        assert server.stop() == 0  # SIGTERM: in-flight requests finish, the batch commits
        stop.set()
        for t in threads:
            t.join(60)
    assert len(acknowledged) >= 200
    with Server(faceledger, "--database-url", database_url, "--credentials-file", credentials) as server:
        c = Api(server, database_url).client()
        created = set(psql(database_url, "SELECT data->>'userId' FROM events WHERE type = 'UserCreated'").split())
        missing = [user for user, _ in acknowledged if user not in created]
        assert missing == [], f"{len(missing)} acknowledged users were lost"
        # And an acknowledged request replays: the same token with the same request changes nothing.
        user, token = acknowledged[-1]
        c.create_user(CollectionId="c", UserId=user, ClientRequestToken=token)
        assert server.stop() == 0
