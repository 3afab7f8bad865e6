"""The Rekognition user API end to end: the real binary, driven by boto3 and the AWS CLI."""
import datetime
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import botocore
import pytest

from api import embedding


def test_the_user_family_with_boto3(api):
    c = api.client()
    arn = c.create_collection(CollectionId="people")["CollectionArn"]
    assert arn.startswith("arn:aws:rekognition:us-east-1:") and arn.endswith(":collection/people")
    with pytest.raises(c.exceptions.ResourceAlreadyExistsException):
        c.create_collection(CollectionId="people")
    c.create_user(CollectionId="people", UserId="alice")
    with pytest.raises(c.exceptions.ConflictException):
        c.create_user(CollectionId="people", UserId="alice")

    base = embedding()
    faces = api.import_faces("people", [embedding(base, 0.05), embedding(base, 0.05), embedding()])
    first = c.associate_faces(CollectionId="people", UserId="alice", FaceIds=[faces[0]])
    assert [f["FaceId"] for f in first["AssociatedFaces"]] == [faces[0]]
    assert first["UserStatus"] == "UPDATING"

    second = c.associate_faces(CollectionId="people", UserId="alice", FaceIds=[faces[1], faces[2]], UserMatchThreshold=90)
    assert [f["FaceId"] for f in second["AssociatedFaces"]] == [faces[1]]
    (low,) = second["UnsuccessfulFaceAssociations"]
    assert low["FaceId"] == faces[2] and low["Reasons"] == ["LOW_MATCH_CONFIDENCE"] and low["Confidence"] < 90

    users = c.list_users(CollectionId="people")["Users"]
    assert users == [{"UserId": "alice", "UserStatus": "ACTIVE"}]
    described = c.describe_collection(CollectionId="people")
    assert (described["FaceCount"], described["UserCount"]) == (3, 1)
    assert {f["FaceId"] for f in c.list_faces(CollectionId="people", UserId="alice")["Faces"]} == set(faces[:2])


def unit(n, dim=4):
    """The n-th axis: embeddings at right angles to each other (confidence 0 between them)."""
    return [1.0 if i == n else 0.0 for i in range(dim)]


def test_associate_faces_rules(api):
    c = api.client()
    c.create_collection(CollectionId="c")
    for user in ("u", "v"):
        c.create_user(CollectionId="c", UserId=user)
    a, b, far, owned = api.import_faces("c", [[1, 0, 0, 0], [0.99, 0.1, 0, 0], unit(2), unit(3)])
    c.associate_faces(CollectionId="c", UserId="v", FaceIds=[owned])
    # The first face of a user is not held to the threshold; a face not in the collection, another user's face.
    missing = str(uuid.uuid4())
    r = c.associate_faces(CollectionId="c", UserId="u", FaceIds=[a, missing, owned], UserMatchThreshold=100)
    assert [f["FaceId"] for f in r["AssociatedFaces"]] == [a]
    assert r["UnsuccessfulFaceAssociations"] == [
        {"FaceId": missing, "Reasons": ["FACE_NOT_FOUND"]},
        {"FaceId": owned, "UserId": "v", "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]},
    ]
    # Now the default threshold (75) applies; an already associated face is left out of both lists.
    r = c.associate_faces(CollectionId="c", UserId="u", FaceIds=[a, b, far])
    assert [f["FaceId"] for f in r["AssociatedFaces"]] == [b]
    assert [(f["FaceId"], f["Reasons"], f["Confidence"]) for f in r["UnsuccessfulFaceAssociations"]] == [(far, ["LOW_MATCH_CONFIDENCE"], 0)]
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.associate_faces(CollectionId="c", UserId="nobody", FaceIds=[far])
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.associate_faces(CollectionId="nowhere", UserId="u", FaceIds=[far])


def test_a_user_holds_at_most_100_faces(api):
    c = api.client()
    c.create_collection(CollectionId="c")
    c.create_user(CollectionId="c", UserId="u")
    faces = api.import_faces("c", [[1.0, i / 1000.0] for i in range(103)])
    for start in range(0, 96, 32):
        r = c.associate_faces(CollectionId="c", UserId="u", FaceIds=faces[start:start + 32], UserMatchThreshold=0)
        assert len(r["AssociatedFaces"]) == 32
    r = c.associate_faces(CollectionId="c", UserId="u", FaceIds=faces[96:103], UserMatchThreshold=0)
    assert [f["FaceId"] for f in r["AssociatedFaces"]] == faces[96:100]
    assert r["UnsuccessfulFaceAssociations"] == [{"FaceId": f, "Reasons": []} for f in faces[100:103]]
    with pytest.raises(c.exceptions.ServiceQuotaExceededException):
        c.associate_faces(CollectionId="c", UserId="u", FaceIds=faces[100:101], UserMatchThreshold=0)
    assert len(c.list_faces(CollectionId="c", UserId="u")["Faces"]) == 100


def test_disassociate_delete_user_and_delete_faces(api):
    c = api.client()
    c.create_collection(CollectionId="c")
    c.create_user(CollectionId="c", UserId="u")
    c.create_user(CollectionId="c", UserId="v")
    f1, f2, f3, loose = api.import_faces("c", [[1, 0], [1, 0.1], [1, 0.2], [0, 1]])
    c.associate_faces(CollectionId="c", UserId="u", FaceIds=[f1, f2])
    c.associate_faces(CollectionId="c", UserId="v", FaceIds=[f3])
    r = c.disassociate_faces(CollectionId="c", UserId="u", FaceIds=[f1, f3, loose])
    assert r["DisassociatedFaces"] == [{"FaceId": f1}]
    assert r["UnsuccessfulFaceDisassociations"] == [{"FaceId": f3, "UserId": "v", "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}]
    r = c.delete_faces(CollectionId="c", FaceIds=[f2, loose])
    assert r["DeletedFaces"] == [loose]
    assert r["UnsuccessfulFaceDeletions"] == [{"FaceId": f2, "UserId": "u", "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"]}]
    c.delete_user(CollectionId="c", UserId="u")  # disassociates f2 first
    assert c.delete_faces(CollectionId="c", FaceIds=[f2])["DeletedFaces"] == [f2]
    assert [u["UserId"] for u in c.list_users(CollectionId="c")["Users"]] == ["v"]
    c.delete_collection(CollectionId="c")
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.list_users(CollectionId="c")


def test_searches(api):
    c = api.client()
    c.create_collection(CollectionId="c")
    for user in ("near", "far", "empty"):
        c.create_user(CollectionId="c", UserId=user)
    n1, n2, f1, probe = api.import_faces("c", [[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [1, 0.05, 0.01]])
    c.associate_faces(CollectionId="c", UserId="near", FaceIds=[n1, n2])
    c.associate_faces(CollectionId="c", UserId="far", FaceIds=[f1])
    r = c.search_users(CollectionId="c", FaceId=probe)
    assert r["SearchedFace"] == {"FaceId": probe}
    assert [m["User"]["UserId"] for m in r["UserMatches"]] == ["near"]
    assert r["UserMatches"][0]["Similarity"] > 99 and r["UserMatches"][0]["User"]["UserStatus"] == "ACTIVE"
    r = c.search_users(CollectionId="c", UserId="near", UserMatchThreshold=0)
    assert r["SearchedUser"] == {"UserId": "near"}
    assert [m["User"]["UserId"] for m in r["UserMatches"]] == ["far"]  # itself left out, "empty" has no vector
    r = c.search_faces(CollectionId="c", FaceId=n1)
    assert [m["Face"]["FaceId"] for m in r["FaceMatches"]] == [n2, probe] or [m["Face"]["FaceId"] for m in r["FaceMatches"]] == [probe, n2]
    sims = [m["Similarity"] for m in r["FaceMatches"]]
    assert sims == sorted(sims, reverse=True) and all(s >= 80 for s in sims)
    with pytest.raises(c.exceptions.InvalidParameterException):
        c.search_faces(CollectionId="c", FaceId=str(uuid.uuid4()))
    with pytest.raises(c.exceptions.InvalidParameterException):
        c.search_users(CollectionId="c", FaceId=probe, UserId="near")


def test_pagination_survives_writes_and_rejects_tampering(api):
    c = api.client()
    c.create_collection(CollectionId="c")
    faces = api.import_faces("c", [embedding(dim=4) for _ in range(7)])
    first = c.list_faces(CollectionId="c", MaxResults=3)
    assert len(first["Faces"]) == 3 and "NextToken" in first
    # Writes between pages: a new face, and a deleted face that was already listed.
    api.import_faces("c", [embedding(dim=4)])
    c.delete_faces(CollectionId="c", FaceIds=[first["Faces"][0]["FaceId"]])
    seen = [f["FaceId"] for f in first["Faces"]]
    token = first["NextToken"]
    while token:
        page = c.list_faces(CollectionId="c", MaxResults=3, NextToken=token)
        seen += [f["FaceId"] for f in page["Faces"]]
        token = page.get("NextToken")
    assert len(seen) == len(set(seen))
    assert set(faces) <= set(seen)  # every face that existed throughout was listed
    tampered = first["NextToken"][:-2] + ("AA" if not first["NextToken"].endswith("AA") else "BB")
    with pytest.raises(c.exceptions.InvalidPaginationTokenException):
        c.list_faces(CollectionId="c", MaxResults=3, NextToken=tampered)
    for user in ("a", "b", "c"):
        c.create_user(CollectionId="c", UserId=user)
    page = c.list_users(CollectionId="c", MaxResults=2)
    assert [u["UserId"] for u in page["Users"]] == ["a", "b"]
    with pytest.raises(c.exceptions.InvalidPaginationTokenException):  # a token of another operation
        c.list_users(CollectionId="c", NextToken=first["NextToken"])
    rest = c.list_users(CollectionId="c", MaxResults=2, NextToken=page["NextToken"])
    assert [u["UserId"] for u in rest["Users"]] == ["c"] and "NextToken" not in rest
    c.create_collection(CollectionId="d")
    collections = c.list_collections(MaxResults=1)
    assert collections["CollectionIds"] == ["c"]
    assert c.list_collections(NextToken=collections["NextToken"])["CollectionIds"] == ["d"]


def test_idempotency(api):
    c = api.client()
    c.create_collection(CollectionId="c")
    c.create_user(CollectionId="c", UserId="u")
    (face,) = api.import_faces("c", [[1, 0]])
    first = c.associate_faces(CollectionId="c", UserId="u", FaceIds=[face], ClientRequestToken="token-1")
    again = c.associate_faces(CollectionId="c", UserId="u", FaceIds=[face], ClientRequestToken="token-1")
    assert again["AssociatedFaces"] == first["AssociatedFaces"] == [{"FaceId": face}]
    assert again["UserStatus"] == first["UserStatus"]
    assert api.events("client_token = 'token-1' AND type = 'CommandAccepted'") == [("CommandAccepted", "c", "alice", "AssociateFaces")]
    with pytest.raises(c.exceptions.IdempotentParameterMismatchException):
        c.associate_faces(CollectionId="c", UserId="u", FaceIds=[face], ClientRequestToken="token-1", UserMatchThreshold=10)
    # A client error does not bind its token: the same token is evaluated afresh later.
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.associate_faces(CollectionId="c", UserId="later", FaceIds=[face], ClientRequestToken="token-3")
    c.create_user(CollectionId="c", UserId="later")
    c.disassociate_faces(CollectionId="c", UserId="u", FaceIds=[face])
    r = c.associate_faces(CollectionId="c", UserId="later", FaceIds=[face], ClientRequestToken="token-3")
    assert r["AssociatedFaces"] == [{"FaceId": face}]


def test_16_concurrent_identical_requests_make_one_command(api):
    c = api.client()
    c.create_collection(CollectionId="c")
    c.create_user(CollectionId="c", UserId="u")
    faces = api.import_faces("c", [[1, i / 100] for i in range(5)])
    barrier = threading.Barrier(16)
    clients = [api.client() for _ in range(16)]

    def call(client):
        barrier.wait()
        r = client.associate_faces(CollectionId="c", UserId="u", FaceIds=faces, ClientRequestToken="same-token")
        r.pop("ResponseMetadata")
        return json.dumps(r, sort_keys=True)

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(call, clients))
    assert len(set(responses)) == 1
    assert len(json.loads(responses[0])["AssociatedFaces"]) == 5
    assert len(api.events("client_token = 'same-token' AND type = 'CommandAccepted'")) == 1
    assert len(api.events("client_token = 'same-token' AND type = 'FaceAssociated'")) == 5


def test_8_racing_clients_never_give_a_face_two_owners(api):
    c = api.client()
    c.create_collection(CollectionId="c")
    users = [f"user-{i}" for i in range(8)]
    for user in users:
        c.create_user(CollectionId="c", UserId=user)
    faces = api.import_faces("c", [[1, i / 1000] for i in range(40)])
    barrier = threading.Barrier(8)

    def race(index):
        client = api.client()
        barrier.wait()
        won = []
        for start in range(0, 40, 10):  # overlapping batches, in different orders per client
            batch = faces[start:start + 10][::(1 if index % 2 else -1)]
            r = client.associate_faces(CollectionId="c", UserId=users[index], FaceIds=batch, UserMatchThreshold=0)
            won += [f["FaceId"] for f in r["AssociatedFaces"]]
            for refused in r["UnsuccessfulFaceAssociations"]:
                assert refused["Reasons"] == ["ASSOCIATED_TO_A_DIFFERENT_USER"] and refused["UserId"] != users[index]
        return users[index], won

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(race, range(8)))
    claimed = {}
    for user, won in results:
        for face in won:
            assert face not in claimed, f"{face} associated to {claimed.get(face)} and {user}"
            claimed[face] = user
    assert set(claimed) == set(faces)
    owners = {f["FaceId"]: f.get("UserId") for f in c.list_faces(CollectionId="c")["Faces"]}
    assert owners == claimed


def test_roles_are_enforced(api):
    admin, auditor, writer = api.client("admin"), api.client("auditor"), api.client("writer")
    admin.create_collection(CollectionId="c")
    with pytest.raises(auditor.exceptions.AccessDeniedException):
        auditor.create_user(CollectionId="c", UserId="u")
    assert auditor.list_users(CollectionId="c")["Users"] == []
    writer.create_user(CollectionId="c", UserId="u")
    status, _, body = api.raw("FaceLedger.ImportFaces", {"CollectionId": "c", "Faces": [{"Embedding": [1, 2]}]}, role="auditor")
    assert (status, body["__type"]) == (400, "AccessDeniedException")
    # Every event carries the principal of the key that caused it.
    assert {(e[2], e[3]) for e in api.events("type = 'UserCreated'")} == {("bob", "CreateUser")}
    assert {(e[2], e[3]) for e in api.events("type = 'CommandRejected'")} == {("carol", "CreateUser"), ("carol", "ImportFaces")}


def test_bad_signatures_are_refused(api):
    cases = [
        (dict(sign=False), 403, "MissingAuthenticationTokenException"),
        (dict(secret="wrong-secret"), 400, "InvalidSignatureException"),
        (dict(service="s3"), 400, "InvalidSignatureException"),
        (dict(headers={"Authorization": "AWS4-HMAC-SHA256 Credential=nothing"}, sign=False), 400, "IncompleteSignatureException"),
    ]
    for kwargs, status, code in cases:
        got_status, headers, body = api.raw("RekognitionService.ListCollections", {}, **kwargs)
        assert (got_status, body["__type"], headers["x-amzn-ErrorType"]) == (status, code, code), kwargs
        assert headers.get("x-amzn-RequestId")
    unknown = api.client()
    unknown._request_signer._credentials = botocore.credentials.Credentials("AKIDUNKNOWN", "whatever")
    with pytest.raises(botocore.exceptions.ClientError) as error:
        unknown.list_collections()
    assert error.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_an_expired_signature_is_refused(api, monkeypatch):
    import botocore.auth
    real_now = botocore.auth.get_current_datetime
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: real_now() - datetime.timedelta(minutes=6))
    status, _, body = api.raw("RekognitionService.ListCollections", {})
    assert (status, body["__type"]) == (400, "InvalidSignatureException")
    assert "expired" in body["message"].lower()
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: real_now() + datetime.timedelta(minutes=4))
    assert api.raw("RekognitionService.ListCollections", {})[0] == 200  # within the allowed skew


def test_throttling_is_retried_by_botocore(api):
    patient = api.client("slow", retries={"max_attempts": 10, "mode": "standard"})
    for _ in range(6):  # 2 per second allowed: botocore backs off and retries until it gets through
        patient.list_collections()
    impatient = api.client("slow", retries={"total_max_attempts": 1})  # no retries at all
    with pytest.raises(impatient.exceptions.ThrottlingException):
        for _ in range(30):
            impatient.list_collections()


def test_the_aws_cli_works_as_written(api):
    created = api.aws("create-collection", "--collection-id", "from-cli")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["StatusCode"] == 200
    listed = api.aws("list-collections")
    assert json.loads(listed.stdout)["CollectionIds"] == ["from-cli"]
    assert api.aws("create-user", "--collection-id", "from-cli", "--user-id", "u").returncode == 0
    users = json.loads(api.aws("list-users", "--collection-id", "from-cli").stdout)["Users"]
    assert users == [{"UserId": "u", "UserStatus": "CREATED"}]
    denied = api.aws("create-user", "--collection-id", "from-cli", "--user-id", "x", role="auditor")
    assert denied.returncode != 0 and "AccessDeniedException" in denied.stderr
    missing = api.aws("describe-collection", "--collection-id", "nope")
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr


def test_index_faces_points_to_import_faces(api):
    c = api.client()
    c.create_collection(CollectionId="c")
    with pytest.raises(c.exceptions.InvalidParameterException) as error:
        c.index_faces(CollectionId="c", Image={"Bytes": b"not an image"})
    assert "ImportFaces" in str(error.value)


def test_face_history_tells_who_did_what_to_a_face_and_when(api):
    admin, writer, auditor = api.client("admin"), api.client("writer"), api.client("auditor")
    admin.create_collection(CollectionId="c")
    for user in ("u", "v"):
        admin.create_user(CollectionId="c", UserId=user)
    face, other = api.import_faces("c", [[1, 0], [0, 1]])
    writer.associate_faces(CollectionId="c", UserId="u", FaceIds=[face, other])
    admin.associate_faces(CollectionId="c", UserId="v", FaceIds=[face])  # refused: u owns it
    writer.associate_faces(CollectionId="c", UserId="u", FaceIds=[face])  # unchanged
    admin.disassociate_faces(CollectionId="c", UserId="u", FaceIds=[face])
    admin.delete_faces(CollectionId="c", FaceIds=[face])

    status, _, body = api.raw("FaceLedger.GetFaceHistory", {"CollectionId": "c", "FaceId": face}, role="auditor")
    assert status == 200, body
    entries = body["Entries"]
    assert [(e["Operation"], e["Principal"], e.get("UserId"), e["Outcome"]) for e in entries] == [
        ("ImportFaces", "alice", None, "IMPORTED"),
        ("AssociateFaces", "bob", "u", "ASSOCIATED"),
        ("AssociateFaces", "alice", "v", "ASSOCIATED_TO_A_DIFFERENT_USER"),
        ("AssociateFaces", "bob", "u", "UNCHANGED"),
        ("DisassociateFaces", "alice", "u", "DISASSOCIATED"),
        ("DeleteFaces", "alice", None, "FORGOTTEN"),  # a face of nobody's leaves with its biometrics
        ("DeleteFaces", "alice", None, "DELETED"),
    ]
    positions = [e["Position"] for e in entries]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert all(isinstance(e["Time"], (int, float)) and e["RequestId"] for e in entries)

    page = api.raw("FaceLedger.GetFaceHistory", {"CollectionId": "c", "FaceId": face, "MaxResults": 4}, role="auditor")[2]
    assert page["Entries"] == entries[:4]
    rest = api.raw("FaceLedger.GetFaceHistory", {"CollectionId": "c", "FaceId": face, "NextToken": page["NextToken"]}, role="auditor")[2]
    assert rest["Entries"] == entries[4:] and "NextToken" not in rest
    # The history of one face is no passport to another's.
    status, _, body = api.raw("FaceLedger.GetFaceHistory", {"CollectionId": "c", "FaceId": other, "NextToken": page["NextToken"]}, role="auditor")
    assert (status, body["__type"]) == (400, "InvalidPaginationTokenException")
    # Writers change things; they do not read the audit trail.
    status, _, body = api.raw("FaceLedger.GetFaceHistory", {"CollectionId": "c", "FaceId": face}, role="writer")
    assert (status, body["__type"]) == (400, "AccessDeniedException")
