"""`faceledger revert`: a rogue principal's changes undone, others' kept, all of it in the audit trail."""
import subprocess

from conftest import psql
from test_state import now


def owners(c):
    return {f["FaceId"]: f.get("UserId") for f in c.list_faces(CollectionId="c")["Faces"]}


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
