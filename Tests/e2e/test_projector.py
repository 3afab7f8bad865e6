"""The projector: UserStatus while it is paused and after, lag, one active instance and take-over."""
import json
import os
import signal
import subprocess
import time
import urllib.request

from api import Api
from conftest import psql, write_credentials
from server import Server
from test_rebuild import snapshot

PROJECTOR_LOCK = int.from_bytes(b"FLProjec", "big")


def status(server):
    with urllib.request.urlopen(server.url + "/status", timeout=10) as response:
        return json.loads(response.read())["projector"]


def await_folded(server, timeout=20):
    """Polls /status until the projector has folded the whole log (the condition awaited, not a sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lag = status(server)
        if lag["lag_events"] == 0:
            return lag
        time.sleep(0.05)
    raise AssertionError(f"projector did not catch up: {status(server)}")


class HeldLock:
    """A psql session holding the projector's lock, as another active projector would."""

    def __init__(self, database_url):
        self.session = subprocess.Popen(["psql", database_url, "-qAt"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.session.stdin.write(f"SELECT pg_advisory_lock({PROJECTOR_LOCK}); SELECT 'held';\n")
        self.session.stdin.flush()
        while self.session.stdout.readline().strip() != "held":
            pass

    def release(self):
        self.session.stdin.close()
        self.session.wait()


def test_user_status_while_the_projector_is_paused_and_after(faceledger, database_url, data_dir):
    credentials = write_credentials(data_dir)
    args = ("--database-url", database_url, "--credentials-file", credentials)
    with Server(faceledger, *args) as server:
        c = Api(server, database_url).client()
        c.create_collection(CollectionId="c")
        c.create_user(CollectionId="c", UserId="settled")
        (face, other) = Api(server, database_url).import_faces("c", [[1, 0], [1, 0.1]])
        assert server.stop() == 0

    lock = HeldLock(database_url)  # the next server's projector stands by: the read models stop moving
    with Server(faceledger, *args) as server:
        api = Api(server, database_url)
        c = api.client()
        c.create_user(CollectionId="c", UserId="new")
        c.associate_faces(CollectionId="c", UserId="settled", FaceIds=[face])
        statuses = {u["UserId"]: u["UserStatus"] for u in c.list_users(CollectionId="c")["Users"]}
        assert statuses == {"settled": "UPDATING", "new": "CREATING"}
        lag = status(server)
        assert lag["lag_events"] > 0 and lag["lag_seconds"] >= 0 and lag["checkpoint"] < lag["head"]

        lock.release()  # resumed: this server's projector takes over and folds
        assert await_folded(server)["checkpoint"] == int(psql(database_url, "SELECT max(position) FROM events"))
        statuses = {u["UserId"]: u["UserStatus"] for u in c.list_users(CollectionId="c")["Users"]}
        assert statuses == {"settled": "ACTIVE", "new": "CREATED"}
        assert server.stop() == 0


def test_another_instance_takes_over_when_the_active_projector_dies(faceledger, database_url, data_dir):
    credentials = write_credentials(data_dir)
    args = ("--database-url", database_url, "--credentials-file", credentials)
    holders = f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {PROJECTOR_LOCK & 0xffffffff} AND granted"
    with Server(faceledger, *args) as first:
        deadline = time.monotonic() + 20
        while psql(database_url, holders) != "1":  # wait until the first server's projector is the active one
            assert time.monotonic() < deadline, "no projector became active"
        with Server(faceledger, *args) as second:
            a, b = Api(first, database_url).client(), Api(second, database_url).client()
            a.create_collection(CollectionId="c")
            for i in range(4):
                a.create_user(CollectionId="c", UserId=f"u{i}")
            faces = Api(first, database_url).import_faces("c", [[1, i / 100] for i in range(40)])
            await_folded(first)
            assert psql(database_url, holders) == "1"  # exactly one projector is active: the first server's

            first.process.send_signal(signal.SIGKILL)  # the active projector dies; writes go on through the second
            first.process.wait()
            for i in range(4):
                b.associate_faces(CollectionId="c", UserId=f"u{i}", FaceIds=faces[i * 10:(i + 1) * 10], UserMatchThreshold=0)
            await_folded(second)  # the second server's projector took over
            assert psql(database_url, holders) == "1"
            live = snapshot(Api(second, database_url))
            assert all(len(b.list_faces(CollectionId="c", UserId=f"u{i}")["Faces"]) == 10 for i in range(4))
            rebuilt = subprocess.run([faceledger, "rebuild", "--database-url", database_url], capture_output=True, text=True, timeout=120)
            assert rebuilt.returncode == 0, rebuilt.stderr
            assert snapshot(Api(second, database_url)) == live  # nothing folded twice or skipped
            assert second.stop() == 0
