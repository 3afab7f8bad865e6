"""Malformed requests, end to end: one server, a table of bad inputs, and what each must answer.

For every case: the exact status and `__type` (echoed in `x-amzn-ErrorType`), an `x-amzn-RequestId`,
a message that reveals nothing of the implementation, and exactly the events docs/api.md ("What is recorded") allows
(one `CommandRejected` for an authenticated write, nothing for reads, unknown operations and requests
that fail authentication or the size limit). Afterwards the server still serves and the log holds
nothing but those rejections.
"""
import json
import os
import random
import re
import socket
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

import pytest

from conftest import BIN, KEYS, fresh_database, psql, temporary_data_dir, write_credentials

RS = "RekognitionService."
FL = "FaceLedger."
MIB = 1 << 20

# A face imported during set-up, so that "already exists" can be tested.
KNOWN_FACE = "00000000-0000-4000-8000-000000000001"
DIM = 16  # the dimension of collection `people`
UUIDS = [str(uuid.UUID(int=i + 1000, version=4)) for i in range(200)]
FACE = UUIDS[0]
# Words that must never reach a client: SQL, the implementation language, crash reports, paths, secrets.
FORBIDDEN = ["select ", "insert ", "update ", "delete from", "postgres", "libpq", "sqlstate", "swift", ".swift",
             "fatal", "decodingerror", "codingpath", "typemismatch", "stack trace", "traceback", "/work/", "sources/"]
WRONG_SECRET = "not-the-secret-0000000000000000000000000"
STRANGER = ("AKIDSTRANGER0000001", "stranger-secret-000000000000000000000001", "eve", "admin")


def vector(dim, seed):
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(dim)]


def padded(body, size):
    """`body` (a dict) with an undefined member `Padding`, serialised to exactly `size` bytes."""
    text = json.dumps({**body, "Padding": ""})
    return text.replace('"Padding": ""', '"Padding": "' + "x" * (size - len(text)) + '"').encode()


def big_import(collection_id, size, dim=128, odd_last=False, seed=7):
    """An ImportFaces body of at least `size` bytes made of at most 4096 real faces; the last face
    has another dimension when `odd_last`."""
    faces, length = [], 0
    while length < size:
        n = seed * 100000 + len(faces)
        face = {"FaceId": str(uuid.UUID(int=random.Random(n).getrandbits(128), version=4)),
                "ExternalImageId": f"image-{n:08d}-" + "x" * 200, "Embedding": vector(dim, n)}
        faces.append(face)
        length += len(json.dumps(face)) + 2
    assert len(faces) <= 4096
    if odd_last:
        faces[-1]["Embedding"] = vector(dim - 1, seed)
    return json.dumps({"CollectionId": collection_id, "Faces": faces}).encode()


@dataclass
class Case:
    id: str
    target: Optional[str]
    body: Union[bytes, str, dict, list, int, None, Callable[[], Any]]
    status: int
    code: Optional[str]
    writes: bool = False  # an authenticated write: exactly one CommandRejected
    role: str = "admin"
    headers: dict = field(default_factory=dict)
    sign: bool = True
    service: str = "rekognition"
    secret: Optional[str] = None
    says: Optional[str] = None  # a substring the message must hold (case-insensitive)
    timeout: Optional[float] = None  # seconds for the whole exchange, instead of Api.raw's 30


def case(id, target, body, status, code, xfail=None, **kw):
    c = Case(id, target, body, status, code, **kw)
    marks = [pytest.mark.xfail(reason=xfail, strict=True)] if xfail else []
    return pytest.param(c, id=id, marks=marks)


IPE, SER = "InvalidParameterException", "SerializationException"
UNKNOWN = "UnknownOperationException"
person = {"CollectionId": "people", "UserId": "bob"}
assoc = {"CollectionId": "people", "UserId": "alice"}
faces16 = lambda *seeds: [{"Embedding": vector(DIM, s)} for s in seeds]  # noqa: E731

CASES = [
    # ---- bodies that are not a JSON object: SerializationException
    case("broken-json", RS + "CreateUser", '{"CollectionId": people, "UserId": "bob"}', 400, SER, writes=True),
    case("truncated-json", RS + "CreateUser", '{"CollectionId": "people", "UserId": "bo', 400, SER, writes=True),
    case("truncated-after-colon", RS + "AssociateFaces", '{"CollectionId": "people", "FaceIds": [', 400, SER, writes=True),
    case("trailing-garbage", RS + "ListUsers", '{"CollectionId": "people"} }', 400, SER),
    case("top-level-array", RS + "CreateUser", [person], 400, SER, writes=True),
    case("top-level-number", RS + "DescribeCollection", "42", 400, SER),
    case("top-level-string", RS + "CreateCollection", '"people"', 400, SER, writes=True),
    case("top-level-null", RS + "ListUsers", "null", 400, SER),
    case("non-utf8-in-string", RS + "CreateUser", b'{"CollectionId": "people", "UserId": "\xff\xfe"}', 400, SER, writes=True),
    case("latin1-body", RS + "ListUsers", b'{"CollectionId": "caf\xe9"}', 400, SER),
    case("nan-literal", RS + "AssociateFaces", '{"CollectionId": "people", "UserId": "alice", "FaceIds": ["%s"], '
         '"UserMatchThreshold": NaN}' % FACE, 400, SER, writes=True),
    case("infinity-literal", RS + "SearchUsers", '{"CollectionId": "people", "UserId": "alice", "UserMatchThreshold": Infinity}',
         400, SER),
    case("minus-infinity-in-embedding", FL + "ImportFaces",
         '{"CollectionId": "people", "Faces": [{"Embedding": [0.5, -Infinity]}]}', 400, SER, writes=True),

    # ---- members of the wrong type: InvalidParameterException
    case("string-for-list", RS + "AssociateFaces", {**assoc, "FaceIds": FACE}, 400, IPE, writes=True),
    case("number-for-string", RS + "CreateUser", {"CollectionId": "people", "UserId": 42}, 400, IPE, writes=True),
    case("object-for-string", RS + "DescribeCollection", {"CollectionId": {"Name": "people"}}, 400, IPE),
    case("bool-for-number", RS + "ListUsers", {"CollectionId": "people", "MaxResults": True}, 400, IPE),
    case("string-for-number", RS + "AssociateFaces", {**assoc, "FaceIds": [FACE], "UserMatchThreshold": "90"}, 400, IPE, writes=True),
    case("number-in-id-list", RS + "DisassociateFaces", {**assoc, "FaceIds": [1]}, 400, IPE, writes=True),
    case("fraction-for-integer", RS + "ListUsers", {"CollectionId": "people", "MaxResults": 2.5}, 400, IPE),
    case("string-for-embedding", FL + "ImportFaces", {"CollectionId": "people", "Faces": [{"Embedding": "0.1,0.2"}]},
         400, IPE, writes=True),
    case("object-for-faces", FL + "ImportFaces", {"CollectionId": "people", "Faces": {"Embedding": vector(DIM, 1)}},
         400, IPE, writes=True),
    case("null-in-embedding", FL + "ImportFaces", {"CollectionId": "people", "Faces": [{"Embedding": [0.5, None]}]},
         400, IPE, writes=True),

    # ---- required members missing (or null)
    case("missing-user-id", RS + "CreateUser", {"CollectionId": "people"}, 400, IPE, writes=True, says="userId"),
    case("null-collection-id", RS + "CreateUser", {"CollectionId": None, "UserId": "bob"}, 400, IPE, writes=True),
    case("missing-face-ids", RS + "AssociateFaces", assoc, 400, IPE, writes=True, says="faceIds"),
    case("empty-body-list-users", RS + "ListUsers", b"", 400, IPE, says="collectionId"),
    case("empty-object-create-collection", RS + "CreateCollection", {}, 400, IPE, writes=True),
    case("missing-face-id-search-faces", RS + "SearchFaces", {"CollectionId": "people"}, 400, IPE),
    case("missing-faces-import", FL + "ImportFaces", {"CollectionId": "people"}, 400, IPE, writes=True),

    # ---- targets
    case("missing-target", None, person, 400, UNKNOWN),
    case("unimplemented-rekognition-op", RS + "DetectFaces", {}, 400, UNKNOWN),
    case("unknown-rekognition-op", RS + "Frobnicate", person, 400, UNKNOWN),
    case("unknown-faceledger-op", FL + "Frobnicate", person, 400, UNKNOWN),
    case("rekognition-op-under-faceledger", FL + "CreateUser", person, 400, UNKNOWN),
    case("import-under-rekognition", RS + "ImportFaces", {"CollectionId": "people", "Faces": faces16(1)}, 400, UNKNOWN),
    case("wrong-case-target", "rekognitionservice.CreateUser", person, 400, UNKNOWN),
    case("index-faces", RS + "IndexFaces", {"CollectionId": "people", "Image": {"Bytes": "aGVsbG8="}}, 400, IPE,
         writes=True, says="ImportFaces"),

    # ---- body size: 1 MiB for Rekognition operations, 64 MiB for ImportFaces
    case("one-mib-plus-one", RS + "CreateUser", lambda: padded(person, MIB + 1), 413, "RequestEntityTooLargeException"),
    case("exactly-one-mib-is-served", RS + "ListCollections", lambda: padded({}, MIB), 200, None),
    # Read and judged: the error is about the last face's dimension, not the size.
    case("two-mib-import-not-refused-for-size", FL + "ImportFaces",
         lambda: big_import("people", 2 * MIB, dim=DIM, odd_last=True, seed=8), 400, IPE, writes=True, says="Embedding"),
    case("import-over-64-mib", FL + "ImportFaces", lambda: padded({"CollectionId": "people", "Faces": faces16(1)}, 64 * MIB + 1),
         413, "RequestEntityTooLargeException", timeout=10),

    # ---- lists
    case("101-face-ids", RS + "AssociateFaces", {**assoc, "FaceIds": UUIDS[:101]}, 400, IPE, writes=True),
    case("no-face-ids", RS + "AssociateFaces", {**assoc, "FaceIds": []}, 400, IPE, writes=True),
    case("101-face-ids-disassociate", RS + "DisassociateFaces", {**assoc, "FaceIds": UUIDS[:101]}, 400, IPE, writes=True),
    case("no-face-ids-delete", RS + "DeleteFaces", {"CollectionId": "people", "FaceIds": []}, 400, IPE, writes=True),

    # ---- face ids that are not lowercase UUIDs
    case("uppercase-uuid", RS + "AssociateFaces", {**assoc, "FaceIds": [FACE.upper()]}, 400, IPE, writes=True),
    case("short-uuid", RS + "AssociateFaces", {**assoc, "FaceIds": [FACE[:-1]]}, 400, IPE, writes=True),
    case("non-hex-uuid", RS + "DisassociateFaces", {**assoc, "FaceIds": ["g" + FACE[1:]]}, 400, IPE, writes=True),
    case("uuid-without-dashes", RS + "SearchUsers", {"CollectionId": "people", "FaceId": FACE.replace("-", "")}, 400, IPE),
    case("uppercase-uuid-search-faces", RS + "SearchFaces", {"CollectionId": "people", "FaceId": FACE.upper()}, 400, IPE),
    case("uppercase-uuid-import", FL + "ImportFaces",
         {"CollectionId": "people", "Faces": [{"FaceId": UUIDS[1].upper(), "Embedding": vector(DIM, 2)}]}, 400, IPE, writes=True),

    # ---- collection and user ids
    case("collection-id-256", RS + "CreateCollection", {"CollectionId": "c" * 256}, 400, IPE, writes=True),
    case("collection-id-empty", RS + "CreateCollection", {"CollectionId": ""}, 400, IPE, writes=True),
    case("collection-id-space", RS + "CreateCollection", {"CollectionId": "my people"}, 400, IPE, writes=True),
    case("collection-id-slash", RS + "DescribeCollection", {"CollectionId": "people/../x"}, 400, IPE),
    case("collection-id-colon", RS + "ListUsers", {"CollectionId": "people:x"}, 400, IPE),
    case("user-id-129", RS + "CreateUser", {"CollectionId": "people", "UserId": "u" * 129}, 400, IPE, writes=True),
    case("user-id-256", RS + "DeleteUser", {"CollectionId": "people", "UserId": "u" * 256}, 400, IPE, writes=True),
    case("user-id-empty", RS + "CreateUser", {"CollectionId": "people", "UserId": ""}, 400, IPE, writes=True),
    case("user-id-at-sign", RS + "CreateUser", {"CollectionId": "people", "UserId": "bob@example.com"}, 400, IPE, writes=True),
    case("user-id-non-ascii", RS + "CreateUser", {"CollectionId": "people", "UserId": "zo\u00eb"}, 400, IPE, writes=True),
    case("external-image-id-space", FL + "ImportFaces",
         {"CollectionId": "people", "Faces": [{"ExternalImageId": "a b", "Embedding": vector(DIM, 3)}]}, 400, IPE, writes=True),

    # ---- client request tokens
    case("token-65", RS + "CreateUser", {**person, "ClientRequestToken": "t" * 65}, 400, IPE, writes=True),
    case("token-dots", RS + "CreateUser", {**person, "ClientRequestToken": "token.with.dots"}, 400, IPE, writes=True),
    case("token-space", RS + "AssociateFaces", {**assoc, "FaceIds": [FACE], "ClientRequestToken": "tok en"}, 400, IPE, writes=True),
    case("token-empty", RS + "DeleteUser", {**assoc, "ClientRequestToken": ""}, 400, IPE, writes=True),

    # ---- numbers out of range or too large
    case("threshold-minus-1", RS + "AssociateFaces", {**assoc, "FaceIds": [FACE], "UserMatchThreshold": -1}, 400, IPE, writes=True),
    case("threshold-100.5", RS + "AssociateFaces", {**assoc, "FaceIds": [FACE], "UserMatchThreshold": 100.5}, 400, IPE, writes=True),
    case("search-threshold-101", RS + "SearchUsers", {"CollectionId": "people", "UserId": "alice", "UserMatchThreshold": 101}, 400, IPE),
    case("threshold-1e400", RS + "AssociateFaces",
         '{"CollectionId": "people", "UserId": "alice", "FaceIds": ["%s"], "UserMatchThreshold": 1e400}' % FACE, 400, IPE, writes=True),
    case("max-results-1e400", RS + "ListUsers", '{"CollectionId": "people", "MaxResults": 1e400}', 400, IPE),
    case("max-results-1e30", RS + "ListUsers", '{"CollectionId": "people", "MaxResults": 1e30}', 400, IPE),
    case("max-results-2-pow-63", RS + "ListUsers", '{"CollectionId": "people", "MaxResults": 9223372036854775808}', 400, IPE),
    case("max-results-0", RS + "ListUsers", {"CollectionId": "people", "MaxResults": 0}, 400, IPE),
    case("max-results-501", RS + "ListUsers", {"CollectionId": "people", "MaxResults": 501}, 400, IPE),
    case("max-results-negative", RS + "ListUsers", {"CollectionId": "people", "MaxResults": -1}, 400, IPE),
    case("list-faces-max-results-4097", RS + "ListFaces", {"CollectionId": "people", "MaxResults": 4097}, 400, IPE),
    case("search-faces-max-faces-0", RS + "SearchFaces", {"CollectionId": "people", "FaceId": KNOWN_FACE, "MaxFaces": 0}, 400, IPE),
    case("next-token-256", RS + "ListUsers", {"CollectionId": "people", "NextToken": "n" * 256}, 400, IPE),
    case("search-users-both", RS + "SearchUsers", {"CollectionId": "people", "UserId": "alice", "FaceId": KNOWN_FACE}, 400, IPE),
    case("search-users-neither", RS + "SearchUsers", {"CollectionId": "people"}, 400, IPE),

    # ---- ImportFaces
    case("embedding-length-1", FL + "ImportFaces", {"CollectionId": "empty", "Faces": [{"Embedding": [1.0]}]}, 400, IPE, writes=True),
    case("embedding-length-4097", FL + "ImportFaces", {"CollectionId": "empty", "Faces": [{"Embedding": vector(4097, 4)}]},
         400, IPE, writes=True),
    case("embedding-zero-norm", FL + "ImportFaces", {"CollectionId": "empty", "Faces": [{"Embedding": [0.0] * DIM}]},
         400, IPE, writes=True),
    case("embedding-overflows-float", FL + "ImportFaces", {"CollectionId": "empty", "Faces": [{"Embedding": [1e39, 1.0]}]},
         400, IPE, writes=True),
    case("mixed-dimensions", FL + "ImportFaces",
         {"CollectionId": "empty", "Faces": [{"Embedding": vector(8, 5)}, {"Embedding": vector(9, 6)}]}, 400, IPE, writes=True),
    case("dimension-of-collection", FL + "ImportFaces", {"CollectionId": "people", "Faces": [{"Embedding": vector(DIM + 1, 7)}]},
         400, IPE, writes=True),
    case("4097-faces", FL + "ImportFaces", {"CollectionId": "empty", "Faces": [{"Embedding": [1.0, 0.5]}] * 4097},
         400, IPE, writes=True),
    case("zero-faces", FL + "ImportFaces", {"CollectionId": "empty", "Faces": []}, 400, IPE, writes=True),
    case("face-id-exists", FL + "ImportFaces", {"CollectionId": "people", "Faces": [{"FaceId": KNOWN_FACE, "Embedding": vector(DIM, 8)}]},
         400, IPE, writes=True),
    case("face-id-twice", FL + "ImportFaces", {"CollectionId": "people", "Faces": [
        {"FaceId": UUIDS[2], "Embedding": vector(DIM, 9)}, {"FaceId": UUIDS[2], "Embedding": vector(DIM, 10)}]}, 400, IPE, writes=True),

    # ---- authentication (nothing is recorded: the caller is unknown)
    case("unsigned", RS + "CreateUser", person, 403, "MissingAuthenticationTokenException", sign=False),
    case("wrong-secret", RS + "CreateUser", person, 400, "InvalidSignatureException", secret=WRONG_SECRET),
    case("unknown-access-key", RS + "CreateUser", person, 400, "UnrecognizedClientException", role="stranger"),
    case("scoped-to-s3", RS + "CreateUser", person, 400, "InvalidSignatureException", service="s3"),
    case("authorization-garbage", RS + "CreateUser", person, 400, "IncompleteSignatureException", sign=False,
         headers={"Authorization": "AWS4-HMAC-SHA256 garbage"}),
    case("authorization-bearer", RS + "ListUsers", {"CollectionId": "people"}, 400, "IncompleteSignatureException", sign=False,
         headers={"Authorization": "Bearer abc.def.ghi"}),
    case("authorization-without-date", RS + "CreateUser", person, 400, "IncompleteSignatureException", sign=False,
         headers={"Authorization": f"AWS4-HMAC-SHA256 Credential={KEYS['admin'][0]}/20250101/us-east-1/rekognition/aws4_request, "
                                   "SignedHeaders=host;x-amz-target, Signature=" + "0" * 64}),

    # ---- strings the log cannot store (PostgreSQL's jsonb refuses \u0000): refused at the gate, by member,
    # for every operation and every role, before anything of them is recorded but the rejection itself
    case("nul-in-user-id", RS + "CreateUser", '{"CollectionId": "people", "UserId": "bo\\u0000b"}', 400, IPE, writes=True,
         role="writer", says="Value at 'UserId' must not contain the character U+0000"),
    case("nul-in-user-id-from-auditor", RS + "CreateUser", '{"CollectionId": "people", "UserId": "\\u0000"}', 400, IPE,
         writes=True, role="auditor", says="Value at 'UserId' must not contain the character U+0000"),
    case("nul-in-a-member-name", RS + "DeleteUser", '{"CollectionId": "people", "UserId": "alice", "X\\u0000": 1}', 400, IPE,
         writes=True, says="member name"),
    case("nul-in-a-nested-member", FL + "ImportFaces",
         {"CollectionId": "people", "Faces": [{"Embedding": vector(DIM, 30)}, {"ExternalImageId": "a\0", "Embedding": vector(DIM, 31)}]},
         400, IPE, writes=True, says="Value at 'Faces.2.ExternalImageId' must not contain"),
    case("nul-in-a-face-id-list", RS + "AssociateFaces", {**assoc, "FaceIds": [FACE, "\0"]}, 400, IPE, writes=True,
         says="'FaceIds.2'"),
    case("nul-in-a-tag", RS + "CreateCollection", {"CollectionId": "tagged", "Tags": {"team": "a\0b"}}, 400, IPE, writes=True,
         says="'Tags.team'"),
    case("nul-in-a-token", RS + "CreateUser", {**person, "ClientRequestToken": "\0"}, 400, IPE, writes=True,
         says="ClientRequestToken"),
    case("nul-in-a-read", RS + "ListUsers", {"CollectionId": "peo\0ple"}, 400, IPE, says="'CollectionId'"),
    case("nul-in-a-read-from-auditor", FL + "GetFaceHistory", {"CollectionId": "people", "FaceId": "\0"}, 400, IPE,
         role="auditor", says="'FaceId'"),
    case("unpaired-surrogate", RS + "CreateUser", '{"CollectionId": "people", "UserId": "\\ud800x"}', 400, IPE, writes=True,
         says="'UserId' must not contain an unpaired UTF-16 surrogate"),
    case("reversed-surrogates", RS + "ListUsers", '{"CollectionId": "\\udc00\\ud800"}', 400, IPE, says="'CollectionId'"),

    # ---- CreateCollection tags, as the model has them
    case("tag-key-aws-prefix", RS + "CreateCollection", {"CollectionId": "tagged", "Tags": {"aws:team": "x"}}, 400, IPE,
         writes=True, says="aws:"),
    case("tag-key-129", RS + "CreateCollection", {"CollectionId": "tagged", "Tags": {"k" * 129: "x"}}, 400, IPE, writes=True,
         says="less than or equal to 128"),
    case("tag-key-empty", RS + "CreateCollection", {"CollectionId": "tagged", "Tags": {"": "x"}}, 400, IPE, writes=True,
         says="greater than or equal to 1"),
    case("tag-key-bang", RS + "CreateCollection", {"CollectionId": "tagged", "Tags": {"team!": "x"}}, 400, IPE, writes=True,
         says="regular expression pattern"),
    case("tag-value-257", RS + "CreateCollection", {"CollectionId": "tagged", "Tags": {"team": "v" * 257}}, 400, IPE,
         writes=True, says="less than or equal to 256"),
    case("tag-value-semicolon", RS + "CreateCollection", {"CollectionId": "tagged", "Tags": {"team": "a;b"}}, 400, IPE,
         writes=True, says="tags.team"),
    case("201-tags", RS + "CreateCollection", {"CollectionId": "tagged", "Tags": {f"k{i}": "v" for i in range(201)}}, 400, IPE,
         writes=True, says="200"),
    case("tag-value-number", RS + "CreateCollection", {"CollectionId": "tagged", "Tags": {"team": 7}}, 400, IPE, writes=True,
         says="Tags.team"),

    # ---- numbers that do not fit their member: the message names it
    case("fraction-for-max-results-named", RS + "ListUsers", {"CollectionId": "people", "MaxResults": 2.5}, 400, IPE,
         says="Value '2.5' at 'MaxResults'"),
    case("1e30-for-max-results-named", RS + "ListUsers", '{"CollectionId": "people", "MaxResults": 1e30}', 400, IPE,
         says="at 'MaxResults'"),
    case("2-pow-63-for-max-faces-named", RS + "SearchFaces",
         '{"CollectionId": "people", "FaceId": "%s", "MaxFaces": 9223372036854775808}' % KNOWN_FACE, 400, IPE, says="at 'MaxFaces'"),
    case("1e400-threshold-named", RS + "AssociateFaces",
         '{"CollectionId": "people", "UserId": "alice", "FaceIds": ["%s"], "UserMatchThreshold": 1e400}' % FACE, 400, IPE,
         writes=True, says="at 'UserMatchThreshold'"),
    case("1e400-in-an-embedding-named", FL + "ImportFaces",
         '{"CollectionId": "people", "Faces": [{"Embedding": [0.5, 0.5]}, {"Embedding": [0.5, 1e400]}]}', 400, IPE, writes=True,
         says="at 'Faces.2.Embedding.2'"),
    case("string-for-max-results-named", RS + "ListUsers", {"CollectionId": "people", "MaxResults": "x"}, 400, IPE,
         says="'MaxResults'"),
    case("bool-for-threshold-named", RS + "SearchUsers", {"CollectionId": "people", "UserId": "alice", "UserMatchThreshold": True},
         400, IPE, says="'UserMatchThreshold'"),

    # ---- an auditor writing (authenticated, so recorded)
    case("auditor-create-user", RS + "CreateUser", person, 400, "AccessDeniedException", writes=True, role="auditor"),
    case("auditor-import", FL + "ImportFaces", {"CollectionId": "people", "Faces": faces16(11)}, 400, "AccessDeniedException",
         writes=True, role="auditor"),
    case("auditor-delete-collection", RS + "DeleteCollection", {"CollectionId": "people"}, 400, "AccessDeniedException",
         writes=True, role="auditor"),
]


class State:
    """What the cases share: the server, the log position after set-up, and what was sent."""

    def __init__(self, api, server):
        self.api, self.server = api, server
        self.start = 0
        self.sent = 0
        self.sent_writes = 0
        self.big_import = None


def log_position(api):
    return int(psql(api.database_url, "SELECT coalesce(max(position), 0) FROM events"))


def events_after(api, position):
    rows = psql(api.database_url,
                f"SELECT type, request_id, principal, operation FROM events WHERE position > {int(position)} ORDER BY position")
    return [tuple(line.split("|")) for line in rows.splitlines() if line]


@pytest.fixture(scope="module")
def bad():
    """One `faceledger serve` on a fresh database for the whole table, with collections `people`
    (user alice, faces of dimension 16), `empty` (no faces) and `big` (a 2 MiB import)."""
    from api import Api
    from server import Server
    with fresh_database() as database_url, temporary_data_dir() as directory:
        credentials = write_credentials(directory)
        with Server(os.path.abspath(BIN), "--database-url", database_url, "--credentials-file", credentials) as server:
            api = Api(server, database_url)
            c = api.client()
            for collection in ("people", "empty", "big"):
                c.create_collection(CollectionId=collection)
            c.create_user(CollectionId="people", UserId="alice")
            faces = api.import_faces("people", [{"FaceId": KNOWN_FACE, "Embedding": vector(DIM, 100)}, vector(DIM, 101)])
            c.associate_faces(CollectionId="people", UserId="alice", FaceIds=faces[:1])
            state = State(api, server)
            # A valid 2 MiB import: over the 1 MiB limit of other operations, well within ImportFaces'.
            body = big_import("big", 2 * MIB)
            state.big_import = (len(body),) + api.raw(FL + "ImportFaces", body)
            state.start = log_position(api)
            yield state
            server.stop()


def header(headers, name):
    values = [v for k, v in headers.items() if k.lower() == name.lower()]
    return values[0] if values else None


def send(api, c, monkeypatch):
    body = c.body() if callable(c.body) else c.body
    if c.timeout:
        urlopen = urllib.request.urlopen
        monkeypatch.setattr(urllib.request, "urlopen", lambda request, timeout=None: urlopen(request, timeout=c.timeout))
    if c.role == "stranger":  # a well-signed request from a key the server does not know
        KEYS["stranger"] = STRANGER
        try:
            return api.raw(c.target, body, role="stranger")
        finally:
            del KEYS["stranger"]
    return api.raw(c.target, body, role=c.role, headers=c.headers, sign=c.sign, service=c.service, secret=c.secret)


def test_there_are_at_least_40_malformed_requests():
    assert sum(1 for p in CASES if p.values[0].status >= 400) >= 40


def test_a_2_mib_import_is_served(bad):
    size, status, _, body = bad.big_import
    assert size >= 2 * MIB
    assert status == 200, body
    assert len(body["FaceRecords"]) > 100


def test_the_64_mib_limit_is_judged_by_the_declared_length(bad):
    """Refused before the body is read: the headers alone get the 413."""
    host, port = bad.api.url.split("//", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"POST / HTTP/1.1\r\nHost: %s:%s\r\nX-Amz-Target: FaceLedger.ImportFaces\r\n"
                           b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: %d\r\n\r\n"
                           % (host.encode(), port.encode(), 64 * MIB + 1))
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = connection.recv(65536)
            assert chunk, response
            response += chunk
    head = response.split(b"\r\n\r\n", 1)[0].decode().lower()
    assert head.startswith("http/1.1 413"), head
    assert "x-amzn-errortype: requestentitytoolargeexception" in head and "x-amzn-requestid:" in head


@pytest.mark.parametrize("c", CASES)
def test_bad_input(bad, c, monkeypatch):
    api = bad.api
    before = log_position(api)
    status, headers, body = send(api, c, monkeypatch)
    bad.sent += 1
    bad.sent_writes += c.writes
    request_id = header(headers, "x-amzn-RequestId")
    assert request_id, headers
    new = events_after(api, before)

    if c.code is None:
        assert status == c.status, body
        assert new == []
        return
    assert (status, body.get("__type") if isinstance(body, dict) else body) == (c.status, c.code)
    assert set(body) == {"__type", "message"}, body
    assert header(headers, "x-amzn-ErrorType") == c.code
    message = body["message"]
    assert isinstance(message, str) and message
    leaked = [word for word in FORBIDDEN if word in message.lower()]
    leaked += [secret for (_, secret, *_rest) in KEYS.values() if secret in message] + [WRONG_SECRET] * (WRONG_SECRET in message)
    assert not leaked, message
    if c.says:
        assert c.says.lower() in message.lower(), message

    if c.writes:
        operation = c.target.split(".", 1)[1]
        assert new == [("CommandRejected", request_id, KEYS[c.role][2], operation)]
    else:
        assert new == []


def test_after_the_bad_input_the_server_serves_and_the_log_holds_only_rejections(bad):
    if bad.sent == 0:
        pytest.skip("run together with the table of cases")
    api = bad.api
    new = [event[0] for event in events_after(api, bad.start)]
    assert set(new) == {"CommandRejected"}
    assert len(new) == bad.sent_writes >= 1

    assert bad.server.process.poll() is None
    c = api.client()
    assert c.list_users(CollectionId="people")["Users"] == [{"UserId": "alice", "UserStatus": "ACTIVE"}]
    c.create_user(CollectionId="people", UserId="still-serving")
    assert c.describe_collection(CollectionId="people")["UserCount"] == 2
    assert not [line for line in bad.server.stderr_lines if re.search(r"fatal error|panic|crash", line, re.I)]
