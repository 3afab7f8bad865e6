"""The botocore model of FaceLedger's own operations (clients/botocore) matches what the server implements."""
import json
import os
import re

import boto3
import pytest

from conftest import CHECKOUT, KEYS

MODEL_PATH = os.path.join(CHECKOUT, "clients/botocore")
MODEL_FILE = os.path.join(MODEL_PATH, "faceledger/2026-11-30/service-2.json")
API_SOURCE = os.path.join(CHECKOUT, "Sources/FaceLedgerServer/API")


def swift(name):
    with open(os.path.join(API_SOURCE, name)) as f:
        return f.read()


def server_extensions():
    """The operations Operation.swift serves under `FaceLedger.`: `isExtension` names them, directly or
    through `isAudit`."""
    source = swift("Operation.swift")
    names = dict(re.findall(r'case (\w+) = "(\w+)"', source))
    extension = re.search(r"var isExtension: Bool \{(.*?)\n", source).group(1)
    audit = re.search(r"var isAudit: Bool \{(.*?)default: false", source, re.S).group(1)
    cases = set(re.findall(r"\.(\w+)", extension))
    if "isAudit" in extension:
        cases |= set(re.findall(r"\.(\w+)", audit))
    assert cases, "no extension operations found: has Operation.swift changed shape?"
    return {names[case] for case in cases}


def request_members(operation):
    """The members of the Swift request struct of an operation (its `var Name:` lines)."""
    source = swift("Requests.swift") + swift("AuditRequests.swift")
    body = re.search(r"struct %sRequest: \w+ \{(.*?)\n\}" % operation, source, re.S).group(1)
    return set(re.findall(r"\n\s+var ([A-Z]\w*): ", body))


@pytest.fixture
def model():
    with open(MODEL_FILE) as f:
        return json.load(f)


def client(api, role):
    os.environ["AWS_DATA_PATH"] = MODEL_PATH
    try:
        return boto3.session.Session().client("faceledger", endpoint_url=api.url, region_name="us-east-1",
                                              aws_access_key_id=KEYS[role][0], aws_secret_access_key=KEYS[role][1])
    finally:
        del os.environ["AWS_DATA_PATH"]


def test_the_model_has_every_extension_operation_the_server_implements_and_no_other(model):
    metadata = model["metadata"]
    assert (metadata["protocol"], metadata["jsonVersion"], metadata["targetPrefix"], metadata["signingName"],
            metadata["endpointPrefix"]) == ("json", "1.1", "FaceLedger", "rekognition", "faceledger")
    assert set(model["operations"]) == server_extensions()
    assert {"ImportFaces", "GetFaceHistory", "GetUserHistory", "GetPrincipalHistory", "GetCollectionHistory",
            "GetRequestHistory"} <= server_extensions()
    shapes = model["shapes"]
    for name, operation in model["operations"].items():
        members = set(shapes[operation["input"]["shape"]]["members"])
        # Every modelled member is one the server reads; the server reads nothing the model leaves out.
        swift_members = request_members(name)
        if name == "ImportFaces":
            swift_members -= set(shapes["FaceToImport"]["members"])  # the nested FaceInput's members
        assert members == swift_members, name


def test_every_operation_of_the_model_works_through_boto3(api, model):
    admin, auditor = client(api, "admin"), client(api, "auditor")
    api.client().create_collection(CollectionId="c")
    imported = admin.import_faces(CollectionId="c", Faces=[{"Embedding": [1.0, 0.0], "ExternalImageId": "x-1"}])
    [record] = imported["FaceRecords"]
    assert record["Face"]["ExternalImageId"] == "x-1" and record["Face"]["Confidence"] == 100.0
    face, request_id = record["Face"]["FaceId"], imported["ResponseMetadata"]["RequestId"]
    calls = {
        "GetFaceHistory": ("get_face_history", {"CollectionId": "c", "FaceId": face}),
        "GetUserHistory": ("get_user_history", {"CollectionId": "c", "UserId": "nobody"}),
        "GetPrincipalHistory": ("get_principal_history", {"Principal": "alice", "CollectionId": "c"}),
        "GetCollectionHistory": ("get_collection_history", {"CollectionId": "c", "From": 0, "To": 253402300799}),
        "GetRequestHistory": ("get_request_history", {"RequestId": request_id}),
    }
    assert set(calls) | {"ImportFaces"} == set(model["operations"])
    for operation, (method, request) in calls.items():
        entries = getattr(auditor, method)(**request)["Entries"]
        if operation == "GetUserHistory":
            assert entries == []
            continue
        imports = [e for e in entries if e["Type"] == "FaceImported"]
        assert [(e["FaceId"], e["Principal"], e["Outcome"]) for e in imports] == [(face, "alice", "IMPORTED")], operation
        assert imports[0]["Time"].year >= 2024  # a timestamp, parsed by botocore
    # Errors come back as the model's exception classes.
    with pytest.raises(auditor.exceptions.InvalidPaginationTokenException):
        auditor.get_collection_history(CollectionId="c", NextToken="forged.token")
    with pytest.raises(auditor.exceptions.AccessDeniedException):
        auditor.import_faces(CollectionId="c", Faces=[{"Embedding": [0.0, 1.0]}])
