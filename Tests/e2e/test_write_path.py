"""The write path under hostile input and database faults: a command the database refuses fails alone,
a failed batch is undone without refolding the log, every wait has a deadline, tokens are bound per
operation across collections, and large imports are appended in pieces."""
import json
import subprocess
import threading
import time
import urllib.request

import pytest

from api import Api, embedding
from conftest import psql, write_credentials
from server import Server

APPEND_LOCK_KEY = 0x46616365_4C656467  # EventLog.appendLockKey: "FaceLedg"

REFUSE_POISON = """
CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.data::text LIKE '%poison%' THEN RAISE EXCEPTION 'refused by the operator''s policy'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_poison();
"""


def serve(faceledger, database_url, data_dir, *args):
    return Server(faceledger, "--database-url", database_url, "--credentials-file", write_credentials(data_dir), *args)


def status(server):
    with urllib.request.urlopen(server.url + "/status", timeout=30) as response:
        return json.load(response)


def await_condition(check, what, timeout=60):
    """Polls `check` until it is true; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class PsqlSession:
    """An open psql session that holds whatever its statements lock until `close()`."""

    def __init__(self, database_url, *statements):
        self.process = subprocess.Popen(["psql", database_url, "-qAt", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        for statement in statements:
            self.process.stdin.write(statement + "\n")
        self.process.stdin.write("SELECT 'holding';\n")
        self.process.stdin.flush()
        for line in self.process.stdout:  # the statements' own output first
            if line.strip() == "holding":
                return
        raise AssertionError("psql ended before it held its locks")

    def close(self):
        self.process.stdin.write("COMMIT;\n")
        self.process.stdin.close()
        self.process.wait(30)


def processor_waits_for_lock(database_url):
    return psql(database_url, "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                              "WHERE NOT l.granted AND d.datname = current_database()") != "0"


def call_all(calls):
    """Runs every call on its own thread at once; returns their results in order."""
    results = [None] * len(calls)

    def run(i):
        results[i] = calls[i]()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_a_command_the_database_refuses_fails_alone_and_its_batch_is_undone_not_refolded(faceledger, database_url, data_dir):
    with serve(faceledger, database_url, data_dir, "--request-deadline", "120") as server:
        api = Api(server, database_url)
        c = api.client()
        c.create_collection(CollectionId="c")
        # A log of about 100k events, so that a refold after the failure would show.
        for _ in range(25):
            api.import_faces("c", [[1.0, i / 4096] for i in range(4096)])
        psql(database_url, REFUSE_POISON)

        # Hold the append lock so that the commands queue up and are decided in one batch.
        holder = PsqlSession(database_url, "BEGIN;", f"SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY});")
        first = threading.Thread(target=lambda: api.raw("RekognitionService.CreateUser", {"CollectionId": "c", "UserId": "first"}))
        first.start()
        await_condition(lambda: processor_waits_for_lock(database_url), "the first batch to wait for the append lock")
        names = [f"good-{i}" for i in range(15)] + ["poison-1"] + [f"good-{i}" for i in range(15, 30)]
        calls = [lambda n=n: api.raw("RekognitionService.CreateUser", {"CollectionId": "c", "UserId": n}) for n in names]
        results = []
        sender = threading.Thread(target=lambda: results.extend(call_all(calls)))
        sender.start()
        await_condition(lambda: status(server)["write_side"]["queued"] == len(names), "every command to queue")
        holder.close()
        sender.join(120)
        first.join(120)

        answers = dict(zip(names, results))
        poison_status, _, poison_body = answers.pop("poison-1")
        assert poison_status == 500 and poison_body["__type"] == "InternalServerError", poison_body
        assert "refused" not in json.dumps(poison_body)  # the database's message stays in the server's log
        assert all(status_code == 200 for status_code, _, _ in answers.values()), answers
        # The server's log is read by another thread: wait for the line rather than read once.
        await_condition(lambda: "retrying its halves apart" in "".join(server.stderr_lines), "the split to be logged")

        # The poison left nothing: not in the log, not in the write model (it can be created once the
        # operator's trigger is gone).
        assert psql(database_url, "SELECT count(*) FROM events WHERE data::text LIKE '%poison%'") == "0"
        assert psql(database_url, "SELECT count(*) FROM wm_users WHERE user_id = 'poison-1'") == "0"
        await_condition(lambda: {u["UserId"] for page in c.get_paginator("list_users").paginate(CollectionId="c")
                                 for u in page["Users"]} == {"first", *answers}, "the read model to list every good user")
        psql(database_url, "DROP TRIGGER refuse_poison ON events")
        c.create_user(CollectionId="c", UserId="poison-1")


def test_a_write_blocked_by_a_lock_is_answered_503_within_the_deadline_and_writes_resume(faceledger, database_url, data_dir):
    with serve(faceledger, database_url, data_dir, "--request-deadline", "1") as server:
        api = Api(server, database_url)
        api.client().create_collection(CollectionId="c")
        for n, lock in enumerate([
            ["BEGIN;", "LOCK TABLE events IN ACCESS EXCLUSIVE MODE;"],
            ["BEGIN;", f"SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY});"],
        ]):
            holder = PsqlSession(database_url, *lock)
            # The holder keeps its lock until after these answers: without a deadline they would wait for ever.
            code, headers, body = api.raw("RekognitionService.CreateUser", {"CollectionId": "c", "UserId": f"blocked-{n}"})
            assert code == 503 and body["__type"] == "ServiceUnavailableException", body
            # A second write queued behind the blocked one is answered too, without waiting twice.
            code, _, body = api.raw("RekognitionService.CreateUser", {"CollectionId": "c", "UserId": f"queued-{n}"})
            assert code == 503, body
            holder.close()
            # Once the holder is gone, writes work again by themselves.
            code, _, body = api.raw("RekognitionService.CreateUser", {"CollectionId": "c", "UserId": f"after-{n}"})
            assert code == 200, body


def test_the_service_sessions_carry_their_deadlines_and_durable_commits(faceledger, database_url, data_dir):
    with serve(faceledger, database_url, data_dir, "--request-deadline", "3") as server:
        api = Api(server, database_url)
        api.client().create_collection(CollectionId="c")
        # Ask the server's own sessions: a function that reports a session's settings, run by the server
        # as a trigger on its next append.
        psql(database_url, """
            CREATE TABLE seen_settings (session text, name text, setting text);
            CREATE FUNCTION record_settings() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO seen_settings SELECT TG_ARGV[0], name, setting FROM pg_settings
                WHERE name IN ('lock_timeout', 'statement_timeout', 'idle_in_transaction_session_timeout', 'synchronous_commit',
                               'jit', 'enable_seqscan', 'plan_cache_mode')
                UNION ALL SELECT TG_ARGV[0], 'session synchronous_commit', reset_val FROM pg_settings WHERE name = 'synchronous_commit';
                RETURN NULL;
            END $$;
            CREATE TRIGGER record_settings AFTER INSERT ON wm_users FOR EACH STATEMENT EXECUTE FUNCTION record_settings('processor');
            CREATE TRIGGER record_settings AFTER INSERT ON rm_users FOR EACH STATEMENT EXECUTE FUNCTION record_settings('projector');
            """)
        api.client().create_user(CollectionId="c", UserId="u")
        # The read waits for the projector's fold, so its session has been seen too.
        assert [u["UserId"] for u in api.client().list_users(CollectionId="c")["Users"]] == ["u"]
        seen = {}
        for line in psql(database_url, "SELECT DISTINCT session, name, setting FROM seen_settings").splitlines():
            session, name, setting = line.split("|")
            seen.setdefault(session, {})[name] = setting
        deadlines = {"lock_timeout": "3000", "statement_timeout": "30000", "idle_in_transaction_session_timeout": "10000"}
        # Plans for key lookups (SessionSettings.keyLookups), and no JIT.
        plans = {"jit": "off", "enable_seqscan": "off", "plan_cache_mode": "force_generic_plan"}
        # The batch's transaction commits without waiting for the WAL flush; the session's own setting,
        # which the flush after the batch runs under, is synchronous (test_faults: a crash loses nothing).
        assert seen["processor"] == deadlines | plans | {"synchronous_commit": "off", "session synchronous_commit": "on"}
        assert seen["projector"] == deadlines | plans | {"synchronous_commit": "on", "session synchronous_commit": "on"}


def test_a_client_request_token_is_bound_per_operation_across_collections(api):
    c = api.client(retries={"max_attempts": 1})
    for collection in ("a", "b"):
        c.create_collection(CollectionId=collection)
    c.create_user(CollectionId="a", UserId="u", ClientRequestToken="token-1")
    with pytest.raises(c.exceptions.IdempotentParameterMismatchException):
        c.create_user(CollectionId="b", UserId="u", ClientRequestToken="token-1")
    assert c.list_users(CollectionId="b")["Users"] == []
    # Per operation: the same token on another operation is a new command.
    c.delete_user(CollectionId="a", UserId="u", ClientRequestToken="token-1")
    # And the same request again still replays.
    c.create_user(CollectionId="a", UserId="u", ClientRequestToken="token-1")
    assert c.list_users(CollectionId="a")["Users"] == []


def test_an_import_larger_than_one_append_is_appended_in_pieces_within_one_transaction(faceledger, database_url, data_dir):
    with serve(faceledger, database_url, data_dir, "--request-deadline", "300") as server:
        api = Api(server, database_url)
        api.client().create_collection(CollectionId="c")
        psql(database_url, """
            CREATE TABLE appends (xid xid8);
            CREATE FUNCTION count_appends() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO appends VALUES (pg_current_xact_id()); RETURN NULL; END $$;
            CREATE TRIGGER count_appends AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION count_appends();
            """)
        # 2600 faces of 2048 dimensions: 21 MB of float32, more than one append's 16 MiB.
        # Short numbers keep the body (about 33 MB) under ImportFaces' 64 MiB.
        faces = api.import_faces("c", [[round(x, 2) or 0.5 for x in embedding(dim=2048)] for _ in range(2600)])
        assert len(faces) == 2600
        rows = psql(database_url, "SELECT count(*), count(DISTINCT xmin::text), sum(length(embedding)) "
                                  "FROM events WHERE type = 'FaceImported'").split("|")
        # Each embedding is stored encrypted: its float32 bytes plus AES-GCM's 12-byte nonce and 16-byte tag.
        assert rows == ["2600", "1", str(2600 * (2048 * 4 + 28))]
        # Several appends (the command's records and the faces in two pieces), one transaction.
        statements, transactions = psql(database_url, "SELECT count(*), count(DISTINCT xid::text) FROM appends").split("|")
        assert int(statements) >= 2 and transactions == "1"
        # The projector folds the pieces like any other events (reads may trail it for a moment).
        c = api.client()
        await_condition(lambda: {f["FaceId"] for page in c.get_paginator("list_faces").paginate(CollectionId="c")
                                 for f in page["Faces"]} == set(faces), "the read model to list every imported face")


def test_forget_and_revert_run_their_commands_in_sessions_planned_like_serves(faceledger, api):
    """The command line's own command processors (`forget`, `revert`) plan their lookups as `serve`'s does."""
    admin, rogue = api.client("admin"), api.client("rogue")
    admin.create_collection(CollectionId="c")
    admin.create_user(CollectionId="c", UserId="u")
    kept, forgotten = api.import_faces("c", [embedding(dim=16), embedding(dim=16)])
    instant = psql(api.database_url, """SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""")
    rogue.associate_faces(CollectionId="c", UserId="u", FaceIds=[kept], UserMatchThreshold=0)
    # From here only the command line writes the write model: a trigger on it reports the writer's settings.
    psql(api.database_url, """
        CREATE TABLE seen_settings (name text, setting text);
        CREATE FUNCTION record_settings() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO seen_settings SELECT name, setting FROM pg_settings WHERE name IN ('enable_seqscan', 'plan_cache_mode');
            RETURN NULL;
        END $$;
        CREATE TRIGGER record_settings AFTER INSERT ON wm_faces FOR EACH STATEMENT EXECUTE FUNCTION record_settings();
        """)
    runs = {
        "forget": [faceledger, "forget", "--database-url", api.database_url, "--collection", "c", "--face-id", forgotten],
        "revert": [faceledger, "revert", "--database-url", api.database_url, "--collection", "c", "--to", instant,
                   "--principal", "mallory"],
    }
    for command, args in runs.items():
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        seen = psql(api.database_url, "SELECT DISTINCT name || '=' || setting FROM seen_settings ORDER BY 1").split()
        assert seen == ["enable_seqscan=off", "plan_cache_mode=force_generic_plan"], (command, seen)
        psql(api.database_url, "TRUNCATE seen_settings")
