"""`faceledger loadtest` against a real server: its counts agree with what the service recorded."""
import json
import os
import subprocess

from conftest import KEYS, psql


def test_loadtest_counts_agree_with_the_log(faceledger, api):
    key_id, secret = KEYS["writer"][0], KEYS["writer"][1]
    result = subprocess.run([faceledger, "loadtest", "--endpoint", api.url, "--access-key", key_id, "--secret-key", secret,
                             "--concurrency", "4", "--duration", "2", "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"requests", "errors", "throughput", "p50_ms", "p99_ms"}
    # Each phase's start on standard error, in order (scripts/benchmark-api reads CPU over the measured one).
    assert [line for line in result.stderr.splitlines() if line.startswith("loadtest: ")] == [
        "loadtest: warming up", "loadtest: importing the faces of the measured phase", "loadtest: measuring",
        "loadtest: measured"]
    assert report["requests"] > 0 and report["errors"] == 0
    assert 0 < report["p50_ms"] <= report["p99_ms"]
    assert abs(report["throughput"] - report["requests"] / 2) < 1e-6
    collection = report["collection_id"]
    settled = psql(api.database_url, f"""SELECT count(*) FROM events WHERE collection_id = '{collection}'
                                          AND type = 'CommandSettled' AND operation = 'AssociateFaces'""")
    associated = psql(api.database_url, f"SELECT count(*) FROM events WHERE collection_id = '{collection}' AND type = 'FaceAssociated'")
    assert int(settled) == int(associated) == report["requests"] - report["errors"] + report["warmup_requests"]
    # Every call was signed by the key given: its principal is on every event.
    assert psql(api.database_url, f"SELECT DISTINCT principal FROM events WHERE collection_id = '{collection}'") == KEYS["writer"][2]
    # The run's collection was scaffolding: it is gone, its events stay in the log.
    assert collection not in api.client().list_collections()["CollectionIds"]
    assert psql(api.database_url, f"SELECT count(*) FROM events WHERE collection_id = '{collection}' AND type = 'CollectionDeleted'") == "1"


def test_every_flag_of_loadtest_reads_its_environment_variable(faceledger, api):
    key_id, secret = KEYS["writer"][0], KEYS["writer"][1]
    result = subprocess.run([faceledger, "loadtest"], capture_output=True, text=True, timeout=120, env={
        **os.environ, "FACELEDGER_ENDPOINT": api.url, "FACELEDGER_ACCESS_KEY": key_id, "FACELEDGER_SECRET_KEY": secret,
        "FACELEDGER_CONCURRENCY": "1", "FACELEDGER_DURATION": "0.5", "FACELEDGER_JSON": "true"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # FACELEDGER_JSON: one JSON object
    assert report["requests"] > 0 and report["errors"] == 0
    assert abs(report["throughput"] - report["requests"] / 0.5) < 1e-6  # FACELEDGER_DURATION
    # FACELEDGER_CONCURRENCY: one caller, so one user per hundred faces: caller-0-*.
    users = psql(api.database_url, f"""SELECT DISTINCT data->>'userId' FROM events
                                        WHERE collection_id = '{report["collection_id"]}' AND type = 'UserCreated'""").split()
    assert users and all(u.startswith("caller-0-") for u in users), users
    bad = subprocess.run([faceledger, "loadtest"], capture_output=True, text=True, timeout=60, env={
        **os.environ, "FACELEDGER_ENDPOINT": api.url, "FACELEDGER_ACCESS_KEY": key_id, "FACELEDGER_SECRET_KEY": secret,
        "FACELEDGER_CONCURRENCY": "many"})
    assert bad.returncode == 64 and "FACELEDGER_CONCURRENCY" in bad.stderr


def test_loadtest_spreads_its_callers_over_collections(faceledger, api):
    """--collections 3 with 6 callers: two callers per collection, every collection worked and deleted, the
    counts in the log adding up to the report's. FACELEDGER_COLLECTIONS is read like the other flags."""
    key_id, secret = KEYS["writer"][0], KEYS["writer"][1]
    result = subprocess.run([faceledger, "loadtest", "--endpoint", api.url, "--access-key", key_id, "--secret-key", secret,
                             "--concurrency", "6", "--duration", "1", "--json"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "FACELEDGER_COLLECTIONS": "3"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    collections = report["collection_ids"]
    assert len(set(collections)) == 3 and report["collection_id"] == collections[0]
    total = 0
    for index, collection in enumerate(collections):
        settled = int(psql(api.database_url, f"""SELECT count(*) FROM events WHERE collection_id = '{collection}'
                                                  AND type = 'CommandSettled' AND operation = 'AssociateFaces'"""))
        assert settled > 0, collection
        total += settled
        # Callers c and c + 3 work in collection c.
        users = set(psql(api.database_url, f"""SELECT DISTINCT data->>'userId' FROM events
                                               WHERE collection_id = '{collection}' AND type = 'UserCreated'""").split())
        assert {u.split("-")[1] for u in users} == {str(index), str(index + 3)}, users
        assert psql(api.database_url, f"SELECT count(*) FROM events WHERE collection_id = '{collection}' AND type = 'CollectionDeleted'") == "1"
    assert total == report["requests"] - report["errors"] + report["warmup_requests"]


def test_loadtest_open_loop_sends_exactly_its_schedule(faceledger, api):
    """--rate 20 with 2 callers: one request every 100 ms per caller, so the 2-second measured window holds
    exactly 40, and the one-second warm-up 20, however fast the server answers."""
    key_id, secret = KEYS["writer"][0], KEYS["writer"][1]
    result = subprocess.run([faceledger, "loadtest", "--endpoint", api.url, "--access-key", key_id, "--secret-key", secret,
                             "--concurrency", "2", "--duration", "2", "--rate", "20", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == 0
    assert report["requests"] == 40 and report["warmup_requests"] == 20
    # The rate achieved counts until the last answer, however late the server gave it.
    assert report["measured_seconds"] >= 2
    assert abs(report["throughput"] - report["requests"] / report["measured_seconds"]) < 1e-6
    assert set(report["operations"]) == {"AssociateFaces"}
    settled = psql(api.database_url, f"""SELECT count(*) FROM events WHERE collection_id = '{report["collection_id"]}'
                                          AND type = 'CommandSettled' AND operation = 'AssociateFaces'""")
    assert int(settled) == 60


def test_loadtest_mix_sends_each_operation_and_counts_them_apart(faceledger, api):
    """--mix with every operation: each one's count in the report, the commands' counts agreeing with the log
    (a disassociation takes back a face the caller associated). FACELEDGER_MIX and FACELEDGER_RATE are read
    like the other flags; a malformed mix is a usage error."""
    key_id, secret = KEYS["writer"][0], KEYS["writer"][1]
    mix = "associate=2,disassociate=1,list-users=1,list-faces=1,search-users=1,describe-collection=1"
    result = subprocess.run([faceledger, "loadtest", "--endpoint", api.url, "--access-key", key_id, "--secret-key", secret,
                             "--concurrency", "2", "--duration", "2", "--json"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "FACELEDGER_MIX": mix, "FACELEDGER_RATE": "60"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    operations = report["operations"]
    # 60 req/s for 2 s, and 1 s of warm-up: 180 requests, of which a seventh or more of each kind.
    assert report["requests"] == 120 and report["errors"] == 0
    assert set(operations) == {"AssociateFaces", "DisassociateFaces", "ListUsers", "ListFaces", "SearchUsers",
                               "DescribeCollection"}, operations
    assert sum(o["requests"] for o in operations.values()) == report["requests"]
    assert sum(o["warmup_requests"] for o in operations.values()) == report["warmup_requests"] == 60
    for name in ("AssociateFaces", "DisassociateFaces"):
        settled = psql(api.database_url, f"""SELECT count(*) FROM events WHERE collection_id = '{report["collection_id"]}'
                                              AND type = 'CommandSettled' AND operation = '{name}'""")
        assert int(settled) == operations[name]["requests"] + operations[name]["warmup_requests"], name
    for name, operation in operations.items():
        assert 0 < operation["p50_ms"] <= operation["p99_ms"], name
    bad = subprocess.run([faceledger, "loadtest", "--endpoint", api.url, "--access-key", key_id, "--secret-key", secret,
                          "--mix", "associate=1,dance=2"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 64 and "dance=2" in bad.stderr


def test_loadtest_imports_the_measured_phases_faces_before_its_clock_starts(faceledger, api):
    """--rate 100 with 2 callers: 50 warm-up and 100 measured requests each, more than the first user's hundred
    faces. The second user's faces are imported between the warm-up and the measured phase: in the log every
    import comes before the first measured association, and some after the last warm-up one."""
    key_id, secret = KEYS["writer"][0], KEYS["writer"][1]
    result = subprocess.run([faceledger, "loadtest", "--endpoint", api.url, "--access-key", key_id, "--secret-key", secret,
                             "--concurrency", "2", "--duration", "2", "--rate", "100", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == 0 and report["refills"] == 0
    assert report["requests"] == 200 and report["warmup_requests"] == 100
    collection = report["collection_id"]
    associations = [int(p) for p in psql(api.database_url, f"""SELECT position FROM events WHERE collection_id = '{collection}'
                    AND type = 'CommandSettled' AND operation = 'AssociateFaces' ORDER BY position""").split()]
    imports = [int(p) for p in psql(api.database_url, f"""SELECT position FROM events WHERE collection_id = '{collection}'
               AND type = 'CommandSettled' AND operation = 'ImportFaces' ORDER BY position""").split()]
    assert len(associations) == 300 and len(imports) == 4
    last_warm_up, first_measured = associations[99], associations[100]
    assert max(imports) < first_measured
    assert sum(1 for p in imports if p > last_warm_up) == 2
