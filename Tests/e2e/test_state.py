"""`faceledger state --as-of`: the state at past instants, computed from the log alone."""
import json
import os
import subprocess

from conftest import psql


def now(api):
    """The database clock (the clock of recorded_at), as ISO 8601 with microseconds."""
    return psql(api.database_url, """SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""")


def live(c):
    users = [u["UserId"] for u in c.list_users(CollectionId="c")["Users"]]
    return [{"UserId": u, "FaceIds": sorted(f["FaceId"] for f in c.list_faces(CollectionId="c", UserId=u)["Faces"])} for u in users]


def state(faceledger, api, instant):
    result = subprocess.run([faceledger, "state", "--collection", "c", "--as-of", instant, "--json", "--database-url", api.database_url],
                            capture_output=True, text=True, timeout=60)
    return result


def test_state_as_of_past_instants_matches_what_was_live_then(faceledger, api):
    c = api.client()
    before_anything = now(api)
    c.create_collection(CollectionId="c")
    for user in ("u", "v", "w"):
        c.create_user(CollectionId="c", UserId=user)
    faces = api.import_faces("c", [[1, i / 100] for i in range(6)])
    c.associate_faces(CollectionId="c", UserId="u", FaceIds=faces[:3])
    c.associate_faces(CollectionId="c", UserId="v", FaceIds=faces[3:5])
    first, live_first = now(api), live(c)

    c.disassociate_faces(CollectionId="c", UserId="u", FaceIds=[faces[0]])
    c.delete_user(CollectionId="c", UserId="v")
    c.associate_faces(CollectionId="c", UserId="w", FaceIds=[faces[0], faces[5]])
    second, live_second = now(api), live(c)
    c.delete_collection(CollectionId="c")

    for instant, expected in ((first, live_first), (second, live_second)):
        result = state(faceledger, api, instant)
        assert result.returncode == 0, result.stderr
        snapshot = json.loads(result.stdout)
        assert snapshot["CollectionId"] == "c" and snapshot["AsOf"] == instant
        assert [{"UserId": u["UserId"], "FaceIds": sorted(u["FaceIds"])} for u in snapshot["Users"]] == expected
    assert live_second != live_first

    missing = state(faceledger, api, before_anything)
    assert missing.returncode != 0 and "did not exist" in missing.stderr
    bad = state(faceledger, api, "yesterday")
    assert bad.returncode != 0 and "ISO 8601" in bad.stderr


def test_a_collection_that_never_existed_is_a_runtime_error_printed_alone(faceledger, api):
    result = state_of(faceledger, api, "nope", now(api))
    assert result.returncode == 1  # a failure, not bad usage (64)
    assert "collection nope did not exist" in result.stderr
    assert "usage:" not in result.stderr.lower() and "--help" not in result.stderr
    bad = state_of(faceledger, api, "nope", "yesterday")
    assert bad.returncode == 64 and "ISO 8601" in bad.stderr and "usage:" in bad.stderr.lower()  # bad usage keeps its banner


def state_of(faceledger, api, collection, instant):
    return subprocess.run([faceledger, "state", "--collection", collection, "--as-of", instant, "--database-url", api.database_url],
                          capture_output=True, text=True, timeout=60)


def test_every_flag_of_state_reads_its_environment_variable(faceledger, api):
    c = api.client()
    c.create_collection(CollectionId="c")
    c.create_user(CollectionId="c", UserId="u")
    instant = now(api)
    by_flags = state(faceledger, api, instant)
    assert by_flags.returncode == 0, by_flags.stderr
    by_environment = subprocess.run([faceledger, "state"], capture_output=True, text=True, timeout=60, env={
        **os.environ, "FACELEDGER_COLLECTION": "c", "FACELEDGER_AS_OF": instant, "FACELEDGER_JSON": "1",
        "FACELEDGER_DATABASE_URL": api.database_url})
    assert by_environment.returncode == 0, by_environment.stderr
    assert json.loads(by_environment.stdout) == json.loads(by_flags.stdout) == {
        "CollectionId": "c", "AsOf": instant, "Users": [{"UserId": "u", "FaceIds": []}]}
    # The command line wins over the environment.
    text = subprocess.run([faceledger, "state", "--collection", "c", "--as-of", instant, "--json"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "FACELEDGER_COLLECTION": "other", "FACELEDGER_DATABASE_URL": api.database_url})
    assert json.loads(text.stdout)["CollectionId"] == "c"
    missing = subprocess.run([faceledger, "state", "--as-of", instant, "--database-url", api.database_url],
                             capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items() if k != "FACELEDGER_COLLECTION"})
    assert missing.returncode == 64 and "FACELEDGER_COLLECTION" in missing.stderr
