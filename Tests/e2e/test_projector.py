"""The projector: UserStatus while it is paused and after, lag, one active instance and take-over.

Every check here is scoped to the test's own database, so other FaceLedgers on the same PostgreSQL
server (another checkout's tests, a developer's `serve`) cannot disturb it: ownership is the lease in
this database's `projector_checkpoints` row, and backends are looked up with `datname =
current_database()`. (The advisory locks FaceLedger still takes -- appends, migrations, rebuild -- are
per database as well: PostgreSQL keys them by the database's OID besides the 64-bit key, so two
databases on one server never contend for the same key.)"""
import json
import signal
import subprocess
import time
import urllib.request

from api import Api
from conftest import psql, write_credentials
from server import Server
from test_rebuild import snapshot


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


def lease(database_url):
    """(owner, owner_pid) of the projector lease in this database, or None before any projector ran."""
    row = psql(database_url, "SELECT owner, owner_pid FROM projector_checkpoints WHERE projector = 'read_models' AND owner IS NOT NULL")
    if not row:
        return None
    owner, pid = row.split("|")
    return owner, int(pid)


def owning_server(database_url, *servers):
    """The server whose projector owns the lease (its owner names the process id), or None."""
    held = lease(database_url)
    return next((s for s in servers if held and f" pid {s.process.pid} " in held[0]), None)


def await_owner(database_url, *servers, timeout=20):
    """Polls until one of `servers` owns the lease; returns it."""
    deadline = time.monotonic() + timeout
    while (owner := owning_server(database_url, *servers)) is None:
        assert time.monotonic() < deadline, f"no projector became active: {lease(database_url)}"
        time.sleep(0.05)
    return owner


class HeldLease:
    """A psql session holding the projector's lease, as another active projector would: its
    session stays open, so the lease stays held until `release` closes it."""

    def __init__(self, database_url, timeout=20):
        self.session = subprocess.Popen(["psql", database_url, "-qAt"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while True:  # a previous owner's backend may take a moment to go away
            self.session.stdin.write("SELECT projector_acquire('read_models', 'psql', 3600);\n")
            self.session.stdin.flush()
            if self.session.stdout.readline().strip() == "t":
                return
            assert time.monotonic() < deadline, f"the lease stayed taken: {lease(database_url)}"
            time.sleep(0.05)

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

    held = HeldLease(database_url)  # the next server's projector stands by: the read models stop moving
    with Server(faceledger, *args) as server:
        api = Api(server, database_url)
        c = api.client()
        c.create_user(CollectionId="c", UserId="new")
        c.associate_faces(CollectionId="c", UserId="settled", FaceIds=[face])
        statuses = {u["UserId"]: u["UserStatus"] for u in c.list_users(CollectionId="c")["Users"]}
        assert statuses == {"settled": "UPDATING", "new": "CREATING"}
        lag = status(server)
        assert lag["lag_events"] > 0 and lag["lag_seconds"] >= 0 and lag["checkpoint"] < lag["head"]

        held.release()  # resumed: this server's projector takes over and folds
        assert await_folded(server)["checkpoint"] == int(psql(database_url, "SELECT max(position) FROM events"))
        statuses = {u["UserId"]: u["UserStatus"] for u in c.list_users(CollectionId="c")["Users"]}
        assert statuses == {"settled": "ACTIVE", "new": "CREATED"}
        assert server.stop() == 0


def test_another_instance_takes_over_when_the_active_projector_dies(faceledger, database_url, data_dir):
    credentials = write_credentials(data_dir)
    args = ("--database-url", database_url, "--credentials-file", credentials)
    with Server(faceledger, *args) as first:
        assert await_owner(database_url, first) is first  # the first server's projector is the active one
        with Server(faceledger, *args) as second:
            a, b = Api(first, database_url).client(), Api(second, database_url).client()
            a.create_collection(CollectionId="c")
            for i in range(4):
                a.create_user(CollectionId="c", UserId=f"u{i}")
            faces = Api(first, database_url).import_faces("c", [[1, i / 100] for i in range(40)])
            await_folded(first)
            assert owning_server(database_url, first, second) is first  # the second one stood by

            first.process.send_signal(signal.SIGKILL)  # the active projector dies; writes go on through the second
            first.process.wait()
            for i in range(4):
                b.associate_faces(CollectionId="c", UserId=f"u{i}", FaceIds=faces[i * 10:(i + 1) * 10], UserMatchThreshold=0)
            assert await_owner(database_url, second) is second  # the second server's projector took over
            await_folded(second)
            live = snapshot(Api(second, database_url))
            assert all(len(b.list_faces(CollectionId="c", UserId=f"u{i}")["Faces"]) == 10 for i in range(4))
            rebuilt = subprocess.run([faceledger, "rebuild", "--database-url", database_url], capture_output=True, text=True, timeout=120)
            assert rebuilt.returncode == 0, rebuilt.stderr
            assert snapshot(Api(second, database_url)) == live  # nothing folded twice or skipped
            assert second.stop() == 0


# Every change of the checkpoint, with the lease as it stands after the change and the backend that
# wrote it: the proof of who projected what.
RECORD_CHECKPOINT_WRITES = """
CREATE TABLE checkpoint_writes (id bigserial PRIMARY KEY, old_position bigint, new_position bigint,
                                owner text, owner_pid integer, writer_pid integer);
CREATE FUNCTION record_checkpoint_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO checkpoint_writes (old_position, new_position, owner, owner_pid, writer_pid)
    VALUES (OLD.position, NEW.position, NEW.owner, NEW.owner_pid, pg_backend_pid());
    RETURN NEW;
END $$;
CREATE TRIGGER record_checkpoint_write AFTER UPDATE OF position ON projector_checkpoints
    FOR EACH ROW WHEN (OLD.position IS DISTINCT FROM NEW.position) EXECUTE FUNCTION record_checkpoint_write();
"""


def test_exactly_one_instance_projects_after_the_active_projectors_backend_is_terminated(faceledger, database_url, data_dir):
    credentials = write_credentials(data_dir)
    args = ("--database-url", database_url, "--credentials-file", credentials)
    with Server(faceledger, *args) as first, Server(faceledger, *args) as second:
        psql(database_url, RECORD_CHECKPOINT_WRITES)
        apis = [Api(first, database_url), Api(second, database_url)]
        clients = [api.client() for api in apis]
        clients[0].create_collection(CollectionId="c")
        active = await_owner(database_url, first, second)

        def write(round):
            """Users and faces through both instances; returns what each user must hold."""
            held = {}
            for n, (api, client) in enumerate(zip(apis, clients)):
                user = f"r{round}-via{n}"
                client.create_user(CollectionId="c", UserId=user)
                faces = api.import_faces("c", [[1, round, n, i / 10] for i in range(3)])
                client.associate_faces(CollectionId="c", UserId=user, FaceIds=faces, UserMatchThreshold=0)
                held[user] = sorted(faces)
            return held

        written = write(0)
        # The active projector's backend, looked up in this database only, is terminated: its
        # session (and any session-scoped state) is gone, and its connection re-establishes itself.
        _, backend = lease(database_url)
        assert psql(database_url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  f"WHERE pid = {backend} AND datname = current_database()") == "t"
        for round in range(1, 4):
            written |= write(round)
        for server in (first, second):
            await_folded(server)

        # Exactly one owner, one of the two instances; every checkpoint write after the first was
        # made by the backend that owned the lease, batches follow each other without a gap or an
        # overlap, and the lease changed hands at most once (no two projectors taking turns).
        owner = await_owner(database_url, first, second)
        writes = [line.split("|") for line in psql(database_url, "SELECT old_position, new_position, owner, owner_pid, writer_pid "
                                                                   "FROM checkpoint_writes ORDER BY id").splitlines()]
        assert writes, "nothing was projected"
        assert all(owner_pid == writer_pid for _, _, _, owner_pid, writer_pid in writes), writes
        assert all(int(writes[i][0]) == int(writes[i - 1][1]) for i in range(1, len(writes))), writes
        owners = [w[2] for i, w in enumerate(writes) if i == 0 or w[2] != writes[i - 1][2]]
        assert len(owners) <= 2 and owners[-1] == lease(database_url)[0], owners
        assert f" pid {active.process.pid} " in owners[0], (owners, active.process.pid)

        # Everything written through either instance is in the read models once, as read through both.
        for client in clients:
            users = {u["UserId"] for u in client.list_users(CollectionId="c")["Users"]}
            assert users == set(written)
            for user, faces in written.items():
                assert sorted(f["FaceId"] for f in client.list_faces(CollectionId="c", UserId=user)["Faces"]) == faces
            assert len(client.list_faces(CollectionId="c")["Faces"]) == sum(map(len, written.values()))
        assert psql(database_url, "SELECT user_count FROM rm_collections WHERE collection_id = 'c'") == str(len(written))
        assert owner in (first, second)
        assert first.stop() == 0 and second.stop() == 0


def test_a_stalled_owner_loses_its_lease_and_never_writes_after_it_resumes(faceledger, database_url, data_dir):
    credentials = write_credentials(data_dir)
    args = ("--database-url", database_url, "--credentials-file", credentials)
    with Server(faceledger, *args) as first:
        assert await_owner(database_url, first) is first
        with Server(faceledger, *args) as second:
            psql(database_url, RECORD_CHECKPOINT_WRITES)
            a, b = Api(first, database_url).client(), Api(second, database_url).client()
            a.create_collection(CollectionId="c")
            a.create_user(CollectionId="c", UserId="before")
            await_folded(first)

            # The owner stalls with its connection open (its backend stays alive): only the lease's
            # expiry lets the standby take over.
            first.process.send_signal(signal.SIGSTOP)
            b.create_user(CollectionId="c", UserId="during")
            assert await_owner(database_url, second, timeout=60) is second
            await_folded(second)
            taken_over = int(psql(database_url, "SELECT coalesce(max(id), 0) FROM checkpoint_writes"))

            first.process.send_signal(signal.SIGCONT)  # it resumes believing it is the owner
            for n, client in enumerate((a, b)):
                client.create_user(CollectionId="c", UserId=f"after{n}")
            deadline = time.monotonic() + 20
            while not any("took over the projector lease" in line for line in first.stderr_lines):
                assert time.monotonic() < deadline, "the resumed projector did not notice it lost its lease"
                time.sleep(0.05)
            for server in (first, second):
                await_folded(server)

            # Since the take-over only the second server wrote, from the backend named in the lease;
            # batches follow each other without a gap or an overlap.
            owners = psql(database_url, f"SELECT DISTINCT owner FROM checkpoint_writes WHERE id > {taken_over}").splitlines()
            assert owners == [lease(database_url)[0]] and owning_server(database_url, first, second) is second
            writes = [line.split("|") for line in psql(database_url, "SELECT old_position, new_position, owner_pid, writer_pid "
                                                                       "FROM checkpoint_writes ORDER BY id").splitlines()]
            assert all(owner_pid == writer_pid for _, _, owner_pid, writer_pid in writes), writes
            assert all(writes[i][0] == writes[i - 1][1] for i in range(1, len(writes))), writes
            for client in (a, b):
                assert {u["UserId"] for u in client.list_users(CollectionId="c")["Users"]} == {"before", "during", "after0", "after1"}
            assert psql(database_url, "SELECT user_count FROM rm_collections WHERE collection_id = 'c'") == "4"
            assert second.stop() == 0
        assert first.stop() == 0
