"""Response shapes as the Rekognition model has them: floating-point members written as floats even
when whole (`100.0`), integer members as integers, DeletedFaces left out when empty (the model's min 1),
and CreateCollection's tags kept in the log."""
import json

import pytest

from conftest import psql

FL = "FaceLedger."


def is_float(value):
    return type(value) is float  # json.loads gives int for `100` and float for `100.0`


def test_whole_number_floats_are_written_as_floats_and_integers_as_integers(api):
    c = api.client()
    status, _, created = api.raw("RekognitionService.CreateCollection", {"CollectionId": "c"})
    assert status == 200 and type(created["StatusCode"]) is int, created
    c.create_user(CollectionId="c", UserId="u")
    status, _, imported = api.raw(FL + "ImportFaces", {"CollectionId": "c", "Faces": [
        {"Embedding": [1, 0, 0]}, {"Embedding": [0, 1, 0]}, {"Embedding": [2, 0, 0]}]})
    assert status == 200, imported
    assert [r["Face"]["Confidence"] for r in imported["FaceRecords"]] == [100.0] * 3
    assert all(is_float(r["Face"]["Confidence"]) for r in imported["FaceRecords"])
    x, y, x2 = [r["Face"]["FaceId"] for r in imported["FaceRecords"]]

    # A confidence of exactly 0: y is at right angles to the user's face x.
    c.associate_faces(CollectionId="c", UserId="u", FaceIds=[x])
    status, _, refused = api.raw("RekognitionService.AssociateFaces",
                                 {"CollectionId": "c", "UserId": "u", "FaceIds": [y], "UserMatchThreshold": 50})
    (low,) = refused["UnsuccessfulFaceAssociations"]
    assert low["Confidence"] == 0 and is_float(low["Confidence"]), refused

    listed = api.raw("RekognitionService.ListFaces", {"CollectionId": "c"})[2]
    assert all(is_float(f["Confidence"]) for f in listed["Faces"]) and len(listed["Faces"]) == 3
    # x2 points the same way as x: similarity 100.
    matches = api.raw("RekognitionService.SearchFaces", {"CollectionId": "c", "FaceId": x, "FaceMatchThreshold": 0})[2]["FaceMatches"]
    assert {m["Face"]["FaceId"]: round(m["Similarity"], 6) for m in matches} == {x2: 100.0, y: 0.0}
    assert all(is_float(m["Similarity"]) for m in matches)
    users = api.raw("RekognitionService.SearchUsers", {"CollectionId": "c", "FaceId": x2, "UserMatchThreshold": 0})[2]
    assert [is_float(m["Similarity"]) for m in users["UserMatches"]] == [True]

    described = api.raw("RekognitionService.DescribeCollection", {"CollectionId": "c"})[2]
    assert (described["FaceCount"], described["UserCount"]) == (3, 1)
    assert type(described["FaceCount"]) is int and type(described["UserCount"]) is int
    assert is_float(described["CreationTimestamp"])  # epoch seconds, as AWS sends timestamps
    history = api.raw(FL + "GetFaceHistory", {"CollectionId": "c", "FaceId": y}, role="auditor")[2]["Entries"]
    assert all(type(e["Position"]) is int and is_float(e["Time"]) for e in history)
    assert [(e["Outcome"], e.get("Confidence")) for e in history] == [("IMPORTED", None), ("LOW_MATCH_CONFIDENCE", 0.0)]
    assert is_float(history[1]["Confidence"])
    # boto3 hands the floats on as floats.
    assert is_float(c.list_faces(CollectionId="c")["Faces"][0]["Confidence"])


def test_an_idempotent_retry_answers_floats_as_the_first_answer_did(api):
    api.client().create_collection(CollectionId="c")
    body = {"CollectionId": "c", "Faces": [{"Embedding": [1, 0]}], "ClientRequestToken": "import-once"}
    first = api.raw(FL + "ImportFaces", body)[2]
    retry = api.raw(FL + "ImportFaces", body)[2]
    assert retry == first
    assert is_float(retry["FaceRecords"][0]["Face"]["Confidence"])


def test_delete_faces_leaves_deleted_faces_out_when_none_was_deleted(api):
    c = api.client()
    c.create_collection(CollectionId="c")
    c.create_user(CollectionId="c", UserId="u")
    owned, loose = api.import_faces("c", [[1, 0], [0, 1]])
    c.associate_faces(CollectionId="c", UserId="u", FaceIds=[owned])
    status, _, body = api.raw("RekognitionService.DeleteFaces", {"CollectionId": "c", "FaceIds": [owned]})
    assert status == 200 and "DeletedFaces" not in body, body
    assert body["UnsuccessfulFaceDeletions"] == [{"FaceId": owned, "UserId": "u", "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"]}]
    r = c.delete_faces(CollectionId="c", FaceIds=[owned])
    assert "DeletedFaces" not in r
    assert c.delete_faces(CollectionId="c", FaceIds=[loose, owned])["DeletedFaces"] == [loose]


def test_create_collection_tags_are_validated_and_kept(api):
    c = api.client()
    tags = {"team": "faces", "cost-center": "42", "Ünïcode key": "value with spaces_.:/=+-@", "empty": ""}
    c.create_collection(CollectionId="tagged", Tags=tags)
    c.create_collection(CollectionId="untagged")
    recorded = psql(api.database_url, "SELECT collection_id, data->'tags' FROM events WHERE type = 'CollectionCreated' ORDER BY position")
    rows = [line.split("|") for line in recorded.splitlines()]
    assert [(collection, json.loads(t) if t else None) for collection, t in rows] == [("tagged", tags), ("untagged", None)]

    with pytest.raises(c.exceptions.InvalidParameterException, match="aws:"):
        c.create_collection(CollectionId="reserved", Tags={"aws:team": "x"})
    with pytest.raises(c.exceptions.InvalidParameterException, match="200"):
        c.create_collection(CollectionId="many", Tags={f"k{i}": "v" for i in range(201)})
    assert [u for u in c.list_collections()["CollectionIds"]] == ["tagged", "untagged"]
    # The AWS CLI passes tags the same way.
    cli = api.aws("create-collection", "--collection-id", "from-cli", "--tags", "owner=cli,stage=test")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(psql(api.database_url, "SELECT data->'tags' FROM events WHERE collection_id = 'from-cli' "
                                             "AND type = 'CollectionCreated'")) == {"owner": "cli", "stage": "test"}
