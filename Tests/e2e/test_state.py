"""`faceledger state --as-of`: the state at past instants, computed from the log alone."""
import json
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
