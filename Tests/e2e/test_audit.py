"""The audit queries, through the API, boto3 with the shipped model, and `faceledger audit`; the change feed."""
import json
import os
import signal
import subprocess
import threading

import boto3
import pytest

from conftest import CHECKOUT, KEYS, psql

MODEL_PATH = os.path.join(CHECKOUT, "clients/botocore")
FL = "FaceLedger."


def faceledger_client(api, role):
    """boto3 with the shipped model, found through AWS_DATA_PATH as a user would."""
    os.environ["AWS_DATA_PATH"] = MODEL_PATH
    try:
        return boto3.session.Session().client(
            "faceledger", endpoint_url=api.url, region_name="us-east-1",
            aws_access_key_id=KEYS[role][0], aws_secret_access_key=KEYS[role][1])
    finally:
        del os.environ["AWS_DATA_PATH"]


def history(api, operation, role="auditor", **request):
    """Every entry of an audit operation through the raw API, page by page (3 a page)."""
    entries, token = [], None
    while True:
        body = {**request, "MaxResults": 3, **({"NextToken": token} if token else {})}
        status, _, page = api.raw(FL + operation, body, role=role)
        assert status == 200, page
        entries += page["Entries"]
        token = page.get("NextToken")
        if not token:
            return entries


def cli(faceledger, api, *args):
    result = subprocess.run([faceledger, "audit", *args, "--database-url", api.database_url],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def summary(entries):
    """(Principal, Operation, Outcome, UserId, FaceId or FaceIds, Reasons) of each entry."""
    return [(e["Principal"], e["Operation"], e["Outcome"], e.get("UserId"), e.get("FaceId") or e.get("FaceIds"),
             e.get("Reasons")) for e in entries]


@pytest.fixture
def story(api):
    """Two principals (alice, admin; bob, writer) act on the same faces and users; carol (auditor) and
    bob make refused requests. Returns the face ids and request ids the tests name."""
    admin, writer, auditor = api.client("admin"), api.client("writer"), api.client("auditor")
    admin.create_collection(CollectionId="c")
    admin.create_user(CollectionId="c", UserId="u")
    admin.create_user(CollectionId="c", UserId="v")
    f1, f2 = api.import_faces("c", [[1, 0], [0, 1]])
    associated = writer.associate_faces(CollectionId="c", UserId="u", FaceIds=[f1, f2])
    admin.associate_faces(CollectionId="c", UserId="v", FaceIds=[f1])  # refused per face: u holds it
    with pytest.raises(writer.exceptions.ConflictException):
        writer.create_user(CollectionId="c", UserId="u")
    with pytest.raises(auditor.exceptions.AccessDeniedException):
        auditor.associate_faces(CollectionId="c", UserId="u", FaceIds=[f2])
    admin.disassociate_faces(CollectionId="c", UserId="u", FaceIds=[f1], ClientRequestToken="undo-1")
    writer.create_collection(CollectionId="d")
    writer.create_user(CollectionId="d", UserId="u")
    return {"f1": f1, "f2": f2, "associate_request": associated["ResponseMetadata"]["RequestId"]}


def expected(story):
    f1, f2 = story["f1"], story["f2"]
    return {
        "face": [("alice", "ImportFaces", "IMPORTED", None, f1, None),
                 ("bob", "AssociateFaces", "ASSOCIATED", "u", f1, None),
                 ("alice", "AssociateFaces", "ASSOCIATED_TO_A_DIFFERENT_USER", "v", f1, None),
                 ("alice", "DisassociateFaces", "DISASSOCIATED", "u", f1, None)],
        "user": [("alice", "CreateUser", "USER_CREATED", "u", None, None),
                 ("bob", "AssociateFaces", "ASSOCIATED", "u", f1, None),
                 ("bob", "AssociateFaces", "ASSOCIATED", "u", f2, None),
                 ("bob", "CreateUser", "REJECTED", "u", None, ["ConflictException"]),
                 ("carol", "AssociateFaces", "REJECTED", "u", [f2], ["AccessDeniedException"]),
                 ("alice", "DisassociateFaces", "DISASSOCIATED", "u", f1, None)],
        "principal": [("bob", "AssociateFaces", "ASSOCIATED", "u", f1, None),
                      ("bob", "AssociateFaces", "ASSOCIATED", "u", f2, None),
                      ("bob", "CreateUser", "REJECTED", "u", None, ["ConflictException"]),
                      ("bob", "CreateCollection", "COLLECTION_CREATED", None, None, None),
                      ("bob", "CreateUser", "USER_CREATED", "u", None, None)],
        "collection": [("alice", "CreateCollection", "COLLECTION_CREATED", None, None, None),
                       ("alice", "CreateUser", "USER_CREATED", "u", None, None),
                       ("alice", "CreateUser", "USER_CREATED", "v", None, None),
                       ("alice", "ImportFaces", "IMPORTED", None, f1, None),
                       ("alice", "ImportFaces", "IMPORTED", None, f2, None),
                       ("bob", "AssociateFaces", "ASSOCIATED", "u", f1, None),
                       ("bob", "AssociateFaces", "ASSOCIATED", "u", f2, None),
                       ("alice", "AssociateFaces", "ASSOCIATED_TO_A_DIFFERENT_USER", "v", f1, None),
                       ("bob", "CreateUser", "REJECTED", "u", None, ["ConflictException"]),
                       ("carol", "AssociateFaces", "REJECTED", "u", [f2], ["AccessDeniedException"]),
                       ("alice", "DisassociateFaces", "DISASSOCIATED", "u", f1, None)],
        "request": [("bob", "AssociateFaces", "ASSOCIATED", "u", f1, None),
                    ("bob", "AssociateFaces", "ASSOCIATED", "u", f2, None)],
    }


def queries(story):
    """Each query as (API operation, its request, the CLI's arguments, the expected entries' key)."""
    return [
        ("GetFaceHistory", {"CollectionId": "c", "FaceId": story["f1"]}, ["face", "c", story["f1"]], "face"),
        ("GetUserHistory", {"CollectionId": "c", "UserId": "u"}, ["user", "c", "u"], "user"),
        ("GetPrincipalHistory", {"Principal": "bob"}, ["principal", "bob"], "principal"),
        ("GetCollectionHistory", {"CollectionId": "c"}, ["collection", "c"], "collection"),
        ("GetRequestHistory", {"RequestId": story["associate_request"]}, ["request", story["associate_request"]], "request"),
    ]


def test_each_audit_query_returns_exactly_the_expected_entries_in_order_through_api_cli_and_boto3(faceledger, api, story):
    want = expected(story)
    boto = faceledger_client(api, "auditor")
    for operation, request, args, key in queries(story):
        entries = history(api, operation, **request)
        assert summary(entries) == want[key], operation
        positions = [e["Position"] for e in entries]
        assert positions == sorted(set(positions)), operation
        for e in entries:  # who, what, when
            assert e["RequestId"] and e["SourceAddress"] and e["CollectionId"] in ("c", "d") and e["Type"]
            assert type(e["Position"]) is int and isinstance(e["Time"], float)

        # The command line reads the same entries from the database: one document, or one per line.
        document = json.loads(cli(faceledger, api, *args, "--json"))
        assert document == {"Entries": entries}, operation
        lines = cli(faceledger, api, *args, "--jsonl").splitlines()
        assert [json.loads(line) for line in lines] == entries, operation
        table = cli(faceledger, api, *args).splitlines()
        assert table[0].startswith("POSITION") and len(table) == len(entries) + 1
        assert all(line.split()[0] == str(e["Position"]) for line, e in zip(table[1:], entries))

        # boto3 with the shipped model, paginated by botocore: the same entries, Time as a datetime.
        method = {api_name: name for name, api_name in boto.meta.method_to_api_mapping.items()}[operation]
        pages = boto.get_paginator(method).paginate(**request, PaginationConfig={"PageSize": 2})
        via_boto = [e for page in pages for e in page["Entries"]]
        assert [{**e, "Time": pytest.approx(e["Time"].timestamp(), abs=1e-5)} for e in via_boto] == entries, operation

    # Scoped and windowed queries.
    scoped = history(api, "GetPrincipalHistory", Principal="bob", CollectionId="c")
    assert summary(scoped) == want["principal"][:3]
    assert json.loads(cli(faceledger, api, "principal", "bob", "--collection", "c", "--json"))["Entries"] == scoped
    assert summary(history(api, "GetUserHistory", CollectionId="c", UserId="v")) == [
        ("alice", "CreateUser", "USER_CREATED", "v", None, None),
        ("alice", "AssociateFaces", "ASSOCIATED_TO_A_DIFFERENT_USER", "v", story["f1"], None)]
    everything = history(api, "GetCollectionHistory", CollectionId="c")
    start, end = everything[5]["Time"], everything[10]["Time"]  # bob's association .. alice's disassociation
    window = history(api, "GetCollectionHistory", CollectionId="c", From=start, To=end)
    assert window == everything[5:10]
    assert json.loads(cli(faceledger, api, "collection", "c", "--from", repr(start), "--to", repr(end), "--json"))["Entries"] == window
    assert history(api, "GetUserHistory", CollectionId="c", UserId="u", From=end) == history(api, "GetUserHistory", CollectionId="c", UserId="u")[-1:]
    # The retried token and its request are on the entry.
    assert everything[10]["ClientRequestToken"] == "undo-1"
    assert everything[7]["OwnerUserId"] == "u"
    assert all("Confidence" not in e for e in everything if e["Type"] == "FaceImported")  # not a match
    assert "carol" in everything[9]["Message"]


def test_auditors_and_admins_read_the_audit_writers_do_not_and_nobody_changes_it(api, story):
    for role in ("admin", "auditor"):
        client = faceledger_client(api, role)
        assert client.get_user_history(CollectionId="c", UserId="u")["Entries"]
    writer = faceledger_client(api, "writer")
    calls = {"get_face_history": {"CollectionId": "c", "FaceId": story["f1"]},
             "get_user_history": {"CollectionId": "c", "UserId": "u"},
             "get_principal_history": {"Principal": "bob"},
             "get_collection_history": {"CollectionId": "c"},
             "get_request_history": {"RequestId": story["associate_request"]}}
    events = psql(api.database_url, "SELECT count(*) FROM events")
    for method, request in calls.items():
        with pytest.raises(writer.exceptions.AccessDeniedException):
            getattr(writer, method)(**request)
    # Reads are not recorded, and no audit operation takes anything that changes state.
    assert psql(api.database_url, "SELECT count(*) FROM events") == events


def test_bad_audit_requests_are_refused_with_clear_errors(api, story):
    cases = [
        ("GetUserHistory", {"CollectionId": "c"}, "InvalidParameterException", "userId"),
        ("GetPrincipalHistory", {}, "InvalidParameterException", "principal"),
        ("GetCollectionHistory", {"CollectionId": "c", "From": 10, "To": 5}, "InvalidParameterException", "From"),
        ("GetCollectionHistory", {"CollectionId": "c", "From": 1e300}, "InvalidParameterException", "from"),
        ("GetCollectionHistory", {"CollectionId": "c", "MaxResults": 0}, "InvalidParameterException", "maxResults"),
        ("GetRequestHistory", {"RequestId": ""}, "InvalidParameterException", "requestId"),
    ]
    for operation, body, error, named in cases:
        status, _, answer = api.raw(FL + operation, body, role="auditor")
        assert (status, answer["__type"]) == (400, error), (operation, answer)
        assert named in answer["message"]
    # A token of one subject is no passport to another's.
    page = api.raw(FL + "GetUserHistory", {"CollectionId": "c", "UserId": "u", "MaxResults": 1}, role="auditor")[2]
    status, _, answer = api.raw(FL + "GetUserHistory", {"CollectionId": "c", "UserId": "v", "NextToken": page["NextToken"]},
                                role="auditor")
    assert (status, answer["__type"]) == (400, "InvalidPaginationTokenException")
    status, _, answer = api.raw(FL + "GetPrincipalHistory", {"Principal": "bob", "NextToken": page["NextToken"]}, role="auditor")
    assert (status, answer["__type"]) == (400, "InvalidPaginationTokenException")


def test_the_audit_queries_answer_by_index_range(api, story):
    """The plans of the queries use the audit indexes (or the face stream's, or the primary key)."""
    plans = {
        "events_audit_user": "collection_id = 'c' AND coalesce(data->>'userId', data->'request'->>'UserId') = 'u'",
        "events_audit_principal": "principal = 'bob'",
        "events_audit_principal_collection": "principal = 'bob' AND collection_id = 'c'",
        "events_audit_request": "request_id = 'x'",
    }
    for index, condition in plans.items():
        plan = psql(api.database_url, "SET enable_seqscan = off; SET enable_bitmapscan = off; EXPLAIN SELECT position FROM events "
                    f"WHERE {condition} AND type NOT IN ('CommandAccepted', 'CommandSettled') AND position >= 1 "
                    "AND position < 9223372036854775807 ORDER BY position LIMIT 101")
        assert index in plan, plan


class Tail:
    """A running `faceledger audit tail`, its lines collected as they come."""

    def __init__(self, faceledger, api, *args):
        self.process = subprocess.Popen([faceledger, "audit", "tail", "--jsonl", "--database-url", api.database_url, *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(json.loads(line))
                self.changed.notify_all()

    def await_position(self, position, timeout=30):
        with self.changed:
            assert self.changed.wait_for(lambda: self.lines and self.lines[-1]["Position"] >= position, timeout), self.lines

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(30) == 0, self.process.stderr.read()
        return [entry["Position"] for entry in self.lines]


def entry_positions(api, where="TRUE"):
    rows = psql(api.database_url, "SELECT position FROM events WHERE type NOT IN ('CommandAccepted', 'CommandSettled') "
                f"AND {where} ORDER BY position")
    return [int(p) for p in rows.split()]


def test_audit_tail_delivers_every_entry_exactly_once_across_a_restart(faceledger, api):
    admin, writer = api.client("admin"), api.client("writer")
    admin.create_collection(CollectionId="c")
    tail = Tail(faceledger, api)
    scoped = Tail(faceledger, api, "--collection", "c")
    tail.await_position(entry_positions(api)[-1])  # it caught up with what was there

    # Entries committed while it runs arrive as they commit, from both principals.
    admin.create_user(CollectionId="c", UserId="u")
    faces = api.import_faces("c", [[1, 0], [0.9, 0.1], [0, 1]])
    writer.associate_faces(CollectionId="c", UserId="u", FaceIds=faces[:2])
    writer.create_collection(CollectionId="other")
    tail.await_position(entry_positions(api)[-1])
    first = tail.stop()

    # Stopped: more happens. Restarted from the last position printed, it misses nothing and repeats nothing.
    admin.disassociate_faces(CollectionId="c", UserId="u", FaceIds=faces[:1])
    writer.create_user(CollectionId="other", UserId="w")
    resumed = Tail(faceledger, api, "--from", str(first[-1]))
    admin.delete_faces(CollectionId="c", FaceIds=[faces[2]])
    resumed.await_position(entry_positions(api)[-1])
    assert first + resumed.stop() == entry_positions(api)

    scoped.await_position(entry_positions(api, "collection_id = 'c'")[-1])
    assert scoped.stop() == entry_positions(api, "collection_id = 'c'")
    assert [e["Outcome"] for e in scoped.lines][-1] == "DELETED"


def test_an_idempotent_replay_is_recorded_with_who_retried_and_what_it_replayed(api):
    c = api.client()
    c.create_collection(CollectionId="r")
    c.create_user(CollectionId="r", UserId="u")
    faces = api.import_faces("r", [[1, 0], [1, 0.1]])
    c.associate_faces(CollectionId="r", UserId="u", FaceIds=faces, UserMatchThreshold=0)
    first = c.disassociate_faces(CollectionId="r", UserId="u", FaceIds=faces[:1], ClientRequestToken="once")
    writer = api.client("writer")
    retry = writer.disassociate_faces(CollectionId="r", UserId="u", FaceIds=faces[:1], ClientRequestToken="once")
    assert {k: v for k, v in retry.items() if k != "ResponseMetadata"} == {k: v for k, v in first.items() if k != "ResponseMetadata"}
    settled = psql(api.database_url, "SELECT position FROM events WHERE type = 'CommandSettled' AND client_token = 'once'")
    entries = history(api, "GetRequestHistory", RequestId=retry["ResponseMetadata"]["RequestId"])
    assert [(e["Outcome"], e["Principal"], e.get("ReplayOf"), e.get("ClientRequestToken")) for e in entries] == [
        ("REPLAYED", KEYS["writer"][2], int(settled), "once")]
    # Nothing changed: the face stays free, and the replay is no second disassociation in its history.
    outcomes = [e["Outcome"] for e in history(api, "GetFaceHistory", CollectionId="r", FaceId=faces[0])]
    assert outcomes == ["IMPORTED", "ASSOCIATED", "DISASSOCIATED"]
