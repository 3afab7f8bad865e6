"""Upstream mode: a ledger (`serve --upstream`) in front of a second FaceLedger (the embedded engine), with
the fault-injection proxy between them. Clients talk to the ledger with boto3 as they would to Amazon
Rekognition; the tests check both sides."""
import contextlib
import json
import os
import signal
import subprocess
import time
import uuid

import boto3
import botocore
import pytest
from botocore.config import Config

from api import Api, embedding
from conftest import KEYS, fresh_database, psql, temporary_data_dir, write_credentials
from faultproxy import Fault, FaultProxy
from server import Server

# The ledger signs its calls upstream with the writer's key: the upstream records them under "bob".
LEDGER_KEY = KEYS["writer"]


def wait_for(condition, timeout=60, what="condition"):
    """Polls `condition` until it returns a truthy value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Pair:
    """The upstream FaceLedger, the proxy in front of it, and the ledger in front of the proxy."""

    def __init__(self, faceledger, upstream, proxy, ledger_db, credentials, extra):
        self.faceledger, self.upstream, self.proxy = faceledger, upstream, proxy
        self.ledger_db, self.credentials, self.extra = ledger_db, credentials, extra
        self.ledger = None

    def ledger_args(self):
        return ["--database-url", self.ledger_db, "--credentials-file", self.credentials, "--upstream", self.proxy.url,
                "--upstream-timeout", "2", "--reconcile-grace", "0.5", "--reconcile-interval", "0.2", *self.extra]

    @staticmethod
    def ledger_env():
        return {"AWS_ACCESS_KEY_ID": LEDGER_KEY[0], "AWS_SECRET_ACCESS_KEY": LEDGER_KEY[1], "AWS_REGION": "us-east-1",
                "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_PROFILE": ""}

    def start_ledger(self):
        self.ledger = Api(Server(self.faceledger, *self.ledger_args(), env=self.ledger_env()), self.ledger_db)
        return self.ledger

    def client(self, retries=1, **config):
        """boto3 against the ledger; by default it does not retry, so a test sees every answer."""
        return self.ledger.client(retries={"total_max_attempts": retries}, **config)

    def pending(self):
        return int(psql(self.ledger_db, "SELECT count(*) FROM pending_commands"))

    def reconcile(self, *args):
        return subprocess.run([self.faceledger, "reconcile", "--database-url", self.ledger_db, "--upstream", self.proxy.url,
                               "--upstream-timeout", "2", "--reconcile-grace", "0", *args],
                              capture_output=True, text=True, env={**os.environ, **self.ledger_env()}, timeout=120)

    def upstream_events(self, where="TRUE"):
        return self.upstream.events(where)


@contextlib.contextmanager
def ledger_pair(faceledger, *extra):
    with fresh_database() as upstream_db, fresh_database() as ledger_db, temporary_data_dir() as data_dir:
        credentials = write_credentials(data_dir)
        with Server(faceledger, "--database-url", upstream_db, "--credentials-file", credentials) as upstream_server:
            with FaultProxy(upstream_server.url) as proxy:
                pair = Pair(faceledger, Api(upstream_server, upstream_db), proxy, ledger_db, credentials, extra)
                pair.start_ledger()
                try:
                    yield pair
                finally:
                    if pair.ledger.server.process.poll() is None:
                        pair.ledger.server.stop()
            upstream_server.stop()


@pytest.fixture
def pair(faceledger):
    with ledger_pair(faceledger) as pair:
        yield pair


def import_faces(pair, collection, count):
    """Faces enter through the ledger (FaceLedger.ImportFaces is ledgered when the upstream is a FaceLedger)."""
    return pair.ledger.import_faces(collection, [embedding() for _ in range(count)])


def ledger_owners(pair, collection):
    """face → user in the ledger's own read models (its reads of users go upstream)."""
    rows = psql(pair.ledger_db, f"SELECT face_id, coalesce(user_id, '') FROM rm_faces WHERE collection_id = '{collection}'")
    return {face: user or None for face, user in (line.split("|") for line in rows.splitlines() if line)}


def upstream_owners(pair, collection):
    faces = pair.upstream.client().list_faces(CollectionId=collection, MaxResults=4096)["Faces"]
    return {face["FaceId"]: face.get("UserId") for face in faces}


def await_projected(pair):
    """Waits until the ledger's projector has folded its whole log."""
    wait_for(lambda: psql(pair.ledger_db, "SELECT (SELECT coalesce(max(position), 0) FROM events) <= "
                                          "(SELECT coalesce(max(position), 0) FROM projector_checkpoints)") == "t",
             what="the projector")


def test_ledgered_commands_run_upstream_and_the_ledger_mirrors_them(pair):
    c = pair.client()
    assert c.create_collection(CollectionId="c")["StatusCode"] == 200
    faces = import_faces(pair, "c", 3)
    c.create_user(CollectionId="c", UserId="u1")
    answer = c.associate_faces(CollectionId="c", UserId="u1", FaceIds=faces[:2], ClientRequestToken="t-1")
    assert sorted(f["FaceId"] for f in answer["AssociatedFaces"]) == sorted(faces[:2])
    # The upstream did it, under the ledger's key.
    assert upstream_owners(pair, "c") == {faces[0]: "u1", faces[1]: "u1", faces[2]: None}
    assert ("FaceAssociated", "c", "bob", "AssociateFaces") in pair.upstream_events()
    # The ledger recorded it: accepted before the call, the call, the effects, the settlement.
    kinds = [e[0] for e in pair.ledger.events("operation = 'AssociateFaces'")]
    assert kinds == ["CommandAccepted", "UpstreamAttempted", "FaceAssociated", "FaceAssociated", "CommandSettled"]
    assert psql(pair.ledger_db, "SELECT data->>'upstreamToken' FROM events WHERE type = 'CommandAccepted' "
                                "AND operation = 'AssociateFaces'") == "t-1"
    await_projected(pair)
    assert ledger_owners(pair, "c") == upstream_owners(pair, "c")
    # A retry with the token replays the stored response, and the upstream sees nothing new.
    calls = len(pair.proxy.seen)
    again = c.associate_faces(CollectionId="c", UserId="u1", FaceIds=faces[:2], ClientRequestToken="t-1")
    assert again["AssociatedFaces"] == answer["AssociatedFaces"]
    assert len(pair.proxy.seen) == calls
    # The audit is the ledger's own: the face's history shows who associated it, through the ledger.
    history = pair.ledger.raw("FaceLedger.GetFaceHistory", {"CollectionId": "c", "FaceId": faces[0]})[2]
    assert [(e["Outcome"], e["Principal"]) for e in history["Entries"]] == [("IMPORTED", "alice"), ("ASSOCIATED", "alice")]
    assert pair.pending() == 0


def test_a_command_without_a_token_gets_one_generated_and_recorded(pair):
    c = pair.client()
    c.create_collection(CollectionId="c")
    faces = import_faces(pair, "c", 1)
    c.create_user(CollectionId="c", UserId="u1")
    status, _, body = pair.ledger.raw("RekognitionService.AssociateFaces", {"CollectionId": "c", "UserId": "u1", "FaceIds": faces})
    assert status == 200, body
    token = psql(pair.ledger_db, "SELECT data->>'upstreamToken' FROM events WHERE type = 'CommandAccepted' AND operation = 'AssociateFaces'")
    assert len(token) == 36
    # The upstream got that very token.
    assert psql(pair.upstream.database_url, "SELECT client_token FROM events WHERE type = 'FaceAssociated'") == token


def test_other_operations_pass_through_byte_for_byte(pair):
    pair.client().create_collection(CollectionId="c")
    direct, via = pair.upstream, pair.ledger
    for target, body in [
        ("RekognitionService.ListUsers", {"CollectionId": "c"}),
        ("RekognitionService.ListUsers", {"CollectionId": "missing"}),
        ("RekognitionService.DescribeCollection", {"CollectionId": "c"}),
        ("RekognitionService.DetectFaces", {"Image": {"Bytes": "AAAA"}}),  # the embedded engine lacks it
        ("RekognitionService.TagResource", {"ResourceArn": "arn:aws:rekognition:us-east-1:0:collection/c", "Tags": {"a": "b"}}),
    ]:
        want = direct.raw(target, body)
        got = via.raw(target, body)
        assert (got[0], got[2]) == (want[0], want[2]), target
        if want[0] != 200:
            assert got[1].get("x-amzn-ErrorType") == want[1].get("x-amzn-ErrorType")
    # boto3 sees the upstream's error as the upstream's.
    with pytest.raises(pair.client().exceptions.ResourceNotFoundException):
        pair.client().list_users(CollectionId="missing")
    # Nothing of it is ledgered.
    assert not pair.ledger.events("operation IN ('ListUsers', 'DetectFaces', 'TagResource', 'DescribeCollection')")


def test_an_auditor_passes_through_only_reads(pair):
    pair.client().create_collection(CollectionId="c")
    assert pair.ledger.raw("RekognitionService.ListUsers", {"CollectionId": "c"}, role="auditor")[0] == 200
    status, _, body = pair.ledger.raw("RekognitionService.TagResource", {"ResourceArn": "x", "Tags": {"a": "b"}}, role="auditor")
    assert status == 400 and body["__type"] == "AccessDeniedException"


def test_a_final_upstream_error_reaches_the_client_unchanged_and_is_recorded(pair):
    c = pair.client()
    c.create_collection(CollectionId="c")
    faces = import_faces(pair, "c", 1)
    body = {"CollectionId": "c", "UserId": "nobody", "FaceIds": faces, "ClientRequestToken": "t-missing"}
    direct = pair.upstream.raw("RekognitionService.AssociateFaces", {**body, "ClientRequestToken": "t-direct"})
    via = pair.ledger.raw("RekognitionService.AssociateFaces", body)
    assert (via[0], via[2]) == (direct[0], direct[2]) and via[2]["__type"] == "ResourceNotFoundException"
    kinds = [e[0] for e in pair.ledger.events("operation = 'AssociateFaces'")]
    assert kinds == ["CommandAccepted", "UpstreamAttempted", "CommandRejected"]
    assert pair.pending() == 0


def test_a_retryable_failure_leaves_the_command_for_a_retry_with_the_same_token(pair):
    c = pair.client()
    c.create_collection(CollectionId="c")
    faces = import_faces(pair, "c", 1)
    c.create_user(CollectionId="c", UserId="u1")
    # The upstream executes it, but the answer is lost.
    pair.proxy.fail(Fault("error_after", status=503, code="ServiceUnavailableException", target="AssociateFaces"))
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        c.associate_faces(CollectionId="c", UserId="u1", FaceIds=faces, ClientRequestToken="t-lost")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    answer = c.associate_faces(CollectionId="c", UserId="u1", FaceIds=faces, ClientRequestToken="t-lost")
    assert [f["FaceId"] for f in answer["AssociatedFaces"]] == faces
    # Executed once upstream: one association, then a replay of the same token.
    assert [e[0] for e in pair.upstream_events("operation = 'AssociateFaces'")].count("FaceAssociated") == 1
    attempts = psql(pair.ledger_db, "SELECT string_agg(data->>'verdict', ',' ORDER BY position) FROM events "
                                    "WHERE type = 'UpstreamAttempted'")
    assert attempts.endswith("RETRY,SETTLED")
    assert pair.pending() == 0


def test_the_reconciler_settles_a_command_the_client_gave_up_on(pair):
    c = pair.client()
    c.create_collection(CollectionId="c")
    faces = import_faces(pair, "c", 2)
    c.create_user(CollectionId="c", UserId="u1")
    pair.proxy.fail(Fault("error_before", status=500, code="InternalServerError", target="AssociateFaces"))
    with pytest.raises(botocore.exceptions.ClientError):
        c.associate_faces(CollectionId="c", UserId="u1", FaceIds=faces, ClientRequestToken="t-reconciled")
    assert upstream_owners(pair, "c") == {faces[0]: None, faces[1]: None}  # it never got there
    wait_for(lambda: pair.pending() == 0, what="the reconciler")
    assert upstream_owners(pair, "c") == {faces[0]: "u1", faces[1]: "u1"}
    by = psql(pair.ledger_db, "SELECT string_agg(data->>'by', ',' ORDER BY position) FROM events WHERE type = 'UpstreamAttempted' "
                              "AND operation = 'AssociateFaces'")
    assert by == "request,reconciler"
    # The client's retry now gets the settled response.
    answer = c.associate_faces(CollectionId="c", UserId="u1", FaceIds=faces, ClientRequestToken="t-reconciled")
    assert sorted(f["FaceId"] for f in answer["AssociatedFaces"]) == sorted(faces)
