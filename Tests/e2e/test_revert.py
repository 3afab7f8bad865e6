"""`faceledger revert`: a rogue principal's changes undone, others' kept, all of it in the audit trail."""
import json
import os
import subprocess
import time
import urllib.request

from conftest import psql
from test_state import now, state


def owners(c):
    return {f["FaceId"]: f.get("UserId") for f in c.list_faces(CollectionId="c")["Faces"]}


def projected(api, timeout=30):
    """Waits until the server's read models have folded the whole log (the revert wrote from another process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(api.url + "/status", timeout=10) as response:
            if json.load(response)["projector"]["lag_events"] == 0:
                return
        time.sleep(0.05)
    raise AssertionError("the projector did not catch up")


def revert(faceledger, api, *args):
    return subprocess.run([faceledger, "revert", "--collection", "c", "--database-url", api.database_url, *args],
                          capture_output=True, text=True, timeout=120)


def test_revert_undoes_a_rogue_principal_and_keeps_the_others(faceledger, api):
    admin, rogue, bob = api.client("admin"), api.client("rogue"), api.client("writer")
    admin.create_collection(CollectionId="c")
    for user in ("u1", "u2", "m"):
        admin.create_user(CollectionId="c", UserId=user)
    f1, f2, f3, f4, f5 = api.import_faces("c", [[1, 0], [1, 0.1], [0, 1], [1, 0.2], [0.1, 1]])
    admin.associate_faces(CollectionId="c", UserId="u1", FaceIds=[f1, f2])
    admin.associate_faces(CollectionId="c", UserId="u2", FaceIds=[f3])
    before = owners(admin)
    instant = now(api)

    rogue.disassociate_faces(CollectionId="c", UserId="u1", FaceIds=[f1])
    rogue.associate_faces(CollectionId="c", UserId="m", FaceIds=[f1, f4], UserMatchThreshold=0)
    rogue.disassociate_faces(CollectionId="c", UserId="u2", FaceIds=[f3])
    bob.associate_faces(CollectionId="c", UserId="u2", FaceIds=[f5], UserMatchThreshold=0)  # someone else's change
    bob.associate_faces(CollectionId="c", UserId="u1", FaceIds=[f3], UserMatchThreshold=0)  # a later change on a rogue-touched face
    after_incident = owners(admin)
    events_before = psql(api.database_url, "SELECT count(*) FROM events")

    dry = revert(faceledger, api, "--to", instant, "--principal", "mallory", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{f1}: m -> u1" in dry.stdout and f"{f4}: m -> (no user)" in dry.stdout and f3 not in dry.stdout
    assert psql(api.database_url, "SELECT count(*) FROM events") == events_before  # a dry run changes nothing
    assert owners(admin) == after_incident

    done = revert(faceledger, api, "--to", instant, "--principal", "mallory")
    assert done.returncode == 0, done.stderr
    projected(api)
    result = owners(admin)
    assert result[f1] == "u1" and result[f1] == before[f1]  # restored
    assert result[f4] is None                                # the rogue's association undone
    assert result[f2] == "u1"                                # untouched
    assert result[f3] == "u1" and result[f5] == "u2"         # bob's changes stay in place

    # The audit trail shows the revert as new commands under the operator's principal; nothing rewritten.
    assert int(psql(api.database_url, "SELECT count(*) FROM events")) > int(events_before)
    status, _, body = api.raw("FaceLedger.GetFaceHistory", {"CollectionId": "c", "FaceId": f1}, role="auditor")
    trail = [(e["Principal"], e["Operation"], e["Outcome"]) for e in body["Entries"]]
    assert trail[-2][1:] == ("DisassociateFaces", "DISASSOCIATED") and trail[-1][1:] == ("AssociateFaces", "ASSOCIATED")
    assert trail[-1][0].startswith("operator:")
    assert ("mallory", "AssociateFaces", "ASSOCIATED") in trail  # the incident itself is still there

    again = revert(faceledger, api, "--to", instant, "--principal", "mallory")
    assert again.returncode == 0 and "nothing to revert" in again.stdout


def test_revert_exits_non_zero_and_lists_the_faces_it_could_not_put_back(faceledger, api):
    admin, rogue, bob = api.client("admin"), api.client("rogue"), api.client("writer")
    admin.create_collection(CollectionId="c")
    for user in ("u1", "m"):
        admin.create_user(CollectionId="c", UserId=user)
    faces = api.import_faces("c", [[1, i / 1000] for i in range(101)])
    f1, f2, late = faces[98], faces[99], faces[100]
    admin.associate_faces(CollectionId="c", UserId="u1", FaceIds=faces[:100], UserMatchThreshold=0)  # u1 full: 100 faces
    instant = now(api)
    rogue.disassociate_faces(CollectionId="c", UserId="u1", FaceIds=[f1, f2])
    rogue.associate_faces(CollectionId="c", UserId="m", FaceIds=[f1, f2], UserMatchThreshold=0)
    bob.associate_faces(CollectionId="c", UserId="u1", FaceIds=[late], UserMatchThreshold=0)  # u1: 99, room for one more

    # Every flag from the environment: the same plan as with the flags, and a dry run changes nothing.
    events_before = psql(api.database_url, "SELECT count(*) FROM events")
    by_flags = revert(faceledger, api, "--to", instant, "--principal", "mallory", "--dry-run")
    by_environment = subprocess.run([faceledger, "revert"], capture_output=True, text=True, timeout=120, env={
        **os.environ, "FACELEDGER_COLLECTION": "c", "FACELEDGER_TO": instant, "FACELEDGER_PRINCIPAL": "mallory",
        "FACELEDGER_DRY_RUN": "1", "FACELEDGER_DATABASE_URL": api.database_url})
    assert by_environment.returncode == by_flags.returncode == 0, by_environment.stderr
    assert by_environment.stdout == by_flags.stdout and f"{f1}: m -> u1" in by_flags.stdout and f"{f2}: m -> u1" in by_flags.stdout
    assert "dry run: 2 faces would go back" in by_environment.stdout
    assert psql(api.database_url, "SELECT count(*) FROM events") == events_before

    done = revert(faceledger, api, "--to", instant, "--principal", "mallory")
    assert done.returncode == 1
    not_put_back = [line for line in done.stderr.splitlines() if line.startswith("could not put back")]
    assert len(not_put_back) == 1 and f2 in not_put_back[0] and "AssociateFaces to u1" in not_put_back[0], done.stderr
    assert "reverted 1 of 2 faces" in done.stdout
    # Read from the log (the server's read models may not have folded the revert's events yet).
    settled = json.loads(state(faceledger, api, now(api)).stdout)
    held = {face: user["UserId"] for user in settled["Users"] for face in user["FaceIds"]}
    assert held.get(f1) == "u1" and f2 not in held and held.get(late) == "u1"
