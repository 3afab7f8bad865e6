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
    # The audit shows both calls: the lost answer and the replay that settled it.
    entries = pair.ledger.raw("FaceLedger.GetPrincipalHistory", {"Principal": "alice"})[2]["Entries"]
    calls = [e for e in entries if e["Type"] == "UpstreamAttempted" and e["Operation"] == "AssociateFaces"]
    assert [(e["Outcome"], e.get("Reasons"), e["Upstream"].get("Status"), e["Upstream"]["Attempt"], e["Upstream"]["By"])
            for e in calls] == [("UPSTREAM_RETRY", ["ServiceUnavailableException"], 503, 1, "request"),
                                ("UPSTREAM_SETTLED", None, 200, 2, "request")]


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


def test_per_key_ordering_the_design_example(pair):
    """docs/design.md, "the ordering hazard": (1) AssociateFaces f→u is refused before it reaches the upstream;
    (2) another AssociateFaces f→u; (3) DisassociateFaces f from u. (2) waits until (1) settled, (3) runs
    last: the replay of (1) can never land after (3), and both sides end with f free."""
    c = pair.client()
    c.create_collection(CollectionId="c")
    [f] = import_faces(pair, "c", 1)
    c.create_user(CollectionId="c", UserId="u")
    pair.proxy.fail(Fault("error_before", status=500, code="InternalServerError", target="AssociateFaces"))
    with pytest.raises(botocore.exceptions.ClientError):
        c.associate_faces(CollectionId="c", UserId="u", FaceIds=[f], ClientRequestToken="one")
    c.associate_faces(CollectionId="c", UserId="u", FaceIds=[f], ClientRequestToken="two")
    assert pair.pending() == 0  # (2) could run only once (1) had settled
    c.disassociate_faces(CollectionId="c", UserId="u", FaceIds=[f], ClientRequestToken="three")
    assert upstream_owners(pair, "c") == {f: None}
    await_projected(pair)
    assert ledger_owners(pair, "c") == {f: None}
    # The upstream executed them in the order the ledger accepted them.
    tokens = psql(pair.upstream.database_url, "SELECT string_agg(client_token, ',' ORDER BY position) FROM events "
                                              "WHERE type = 'CommandAccepted' AND client_token IN ('one', 'two', 'three')")
    assert tokens == "one,two,three"


def test_a_lost_create_collection_answer_is_resolved_by_probing_not_by_creating_again(pair):
    c = pair.client()
    pair.proxy.fail(Fault("error_after", status=503, code="ServiceUnavailableException", target="CreateCollection"))
    with pytest.raises(botocore.exceptions.ClientError):
        c.create_collection(CollectionId="probed")
    wait_for(lambda: pair.pending() == 0, what="the reconciler")
    by = psql(pair.ledger_db, "SELECT string_agg(data->>'by' || ':' || (data->>'verdict'), ',' ORDER BY position) "
                              "FROM events WHERE type = 'UpstreamAttempted'")
    assert by == "request:RETRY,probe:SETTLED"
    # Created once upstream, never refused as existing.
    assert [e[0] for e in pair.upstream_events("operation = 'CreateCollection'")] == [
        "CommandAccepted", "CollectionCreated", "CommandSettled"]
    await_projected(pair)
    assert psql(pair.ledger_db, "SELECT collection_id FROM rm_collections") == "probed"


def test_a_lost_delete_faces_answer_counts_the_faces_gone_upstream_as_deleted(pair):
    c = pair.client()
    c.create_collection(CollectionId="c")
    faces = import_faces(pair, "c", 2)
    pair.proxy.fail(Fault("reset_after", target="DeleteFaces"))
    with pytest.raises(botocore.exceptions.ClientError):
        c.delete_faces(CollectionId="c", FaceIds=[faces[0]])
    wait_for(lambda: pair.pending() == 0, what="the reconciler")
    await_projected(pair)
    assert set(ledger_owners(pair, "c")) == {faces[1]} == set(upstream_owners(pair, "c"))


def test_index_faces_goes_upstream_and_its_refusal_comes_back_unchanged(pair):
    pair.client().create_collection(CollectionId="c")
    body = {"CollectionId": "c", "Image": {"Bytes": "AAAA"}, "ExternalImageId": "photo-1"}
    direct = pair.upstream.raw("RekognitionService.IndexFaces", body)
    via = pair.ledger.raw("RekognitionService.IndexFaces", body)
    assert (via[0], via[2]) == (direct[0], direct[2]) and via[2]["__type"] == "InvalidParameterException"
    assert [e[0] for e in pair.ledger.events("operation = 'IndexFaces'")] == ["CommandAccepted", "UpstreamAttempted", "CommandRejected"]


def test_kill_9_between_the_upstream_call_and_the_settlement_loses_nothing_and_doubles_nothing(faceledger):
    import random
    with ledger_pair(faceledger, "--request-deadline", "1", "--upstream-connect-timeout", "1") as pair:
        c = pair.client()
        c.create_collection(CollectionId="c")
        faces = import_faces(pair, "c", 3)
        c.create_user(CollectionId="c", UserId="u")
        for i, face in enumerate(faces):
            # The upstream answers after 1 s; the ledger dies at a random point of the call.
            pair.proxy.fail(Fault("delay", seconds=1.0, target="AssociateFaces"))
            seen = len(pair.proxy.seen)
            url = pair.ledger.url
            request = subprocess.Popen(
                ["python3", "-c", f"""
import boto3
from botocore.config import Config
boto3.client("rekognition", endpoint_url="{url}", region_name="us-east-1", aws_access_key_id="{KEYS['admin'][0]}",
             aws_secret_access_key="{KEYS['admin'][1]}", config=Config(retries={{"total_max_attempts": 1}})
             ).associate_faces(CollectionId="c", UserId="u", FaceIds=["{face}"], ClientRequestToken="kill-{i}",
                                UserMatchThreshold=0)
"""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(lambda: len(pair.proxy.seen) > seen, what="the call upstream")
            time.sleep(random.uniform(0, 1.2))  # a random point: before, at or after the upstream's answer
            pair.ledger.server.process.kill()
            pair.ledger.server.process.wait()
            request.wait(30)
            pair.start_ledger()
            c = pair.client()
        wait_for(lambda: pair.pending() == 0, what="the reconciler after the restarts")
        # Each command executed once upstream, whatever point it died at.
        for i in range(len(faces)):
            executions = psql(pair.upstream.database_url,
                              f"SELECT count(*) FROM events WHERE type = 'CommandAccepted' AND client_token = 'kill-{i}'")
            assert executions == "1", i
        assert upstream_owners(pair, "c") == {face: "u" for face in faces}
        await_projected(pair)
        assert ledger_owners(pair, "c") == upstream_owners(pair, "c")
        # The client's retry gets the settled response.
        answer = c.associate_faces(CollectionId="c", UserId="u", FaceIds=[faces[0]], ClientRequestToken="kill-0",
                                   UserMatchThreshold=0)
        assert [f["FaceId"] for f in answer["AssociatedFaces"]] == [faces[0]]


def test_drift_made_behind_the_ledgers_back_is_reported_and_adopted(pair):
    c = pair.client()
    c.create_collection(CollectionId="c")
    faces = import_faces(pair, "c", 3)
    c.create_user(CollectionId="c", UserId="u1")
    c.create_user(CollectionId="c", UserId="u2")
    c.associate_faces(CollectionId="c", UserId="u1", FaceIds=[faces[0]])
    assert pair.reconcile("--check", "--collection", "c").returncode == 0
    # Directly on the upstream, with its own key.
    direct = pair.upstream.client()
    direct.delete_user(CollectionId="c", UserId="u2")
    # (Random embeddings: no match threshold, or the engine refuses them as LOW_MATCH_CONFIDENCE.)
    direct.associate_faces(CollectionId="c", UserId="u1", FaceIds=[faces[1]], UserMatchThreshold=0)
    checked = pair.reconcile("--check", "--collection", "c")
    assert checked.returncode == 1, checked.stderr
    assert f"face {faces[1]}: associated with user u1 upstream, not in the ledger" in checked.stdout
    assert "user u2: in the ledger only" in checked.stdout
    adopted = pair.reconcile("--check", "--collection", "c", "--adopt")
    assert adopted.returncode == 0 and "adopted 2 differences as operator:" in adopted.stdout, adopted.stdout + adopted.stderr
    assert pair.reconcile("--check", "--collection", "c").returncode == 0
    await_projected(pair)
    assert ledger_owners(pair, "c") == upstream_owners(pair, "c")
    # The audit shows the change as observed upstream, by the operator.
    entries = pair.ledger.raw("FaceLedger.GetFaceHistory", {"CollectionId": "c", "FaceId": faces[1]})[2]["Entries"]
    assert entries[-1]["Outcome"] == "ASSOCIATED" and entries[-1]["Principal"].startswith("operator:")
    assert entries[-1]["Operation"] == "ObservedUpstream"


def test_reconcile_list_and_once_from_the_command_line(faceledger):
    # The server's own reconciler waits an hour before it takes a command: the command line does it here.
    with ledger_pair(faceledger, "--reconcile-grace", "3600") as pair:
        c = pair.client()
        c.create_collection(CollectionId="c")
        pair.proxy.fail(Fault("error_before", status=500, code="InternalServerError", target="CreateUser"))
        with pytest.raises(botocore.exceptions.ClientError):
            c.create_user(CollectionId="c", UserId="u", ClientRequestToken="listed")
        listed = pair.reconcile("--list")
        assert listed.returncode == 0, listed.stderr
        assert "unsettled: 1" in listed.stdout and "CreateUser  listed" in listed.stdout and "attempts 1" in listed.stdout
        # A drift check now would take the unsettled command's effect for drift: refused until it settles.
        refused = pair.reconcile("--check", "--collection", "c")
        assert refused.returncode == 1 and "1 commands of collection c are unsettled" in refused.stderr, refused.stderr
        once = pair.reconcile("--once")
        assert once.returncode == 0, once.stderr
        assert "settled 1, postponed 0, abandoned 0; 0 unsettled" in once.stdout
        assert "u" in {u["UserId"] for u in pair.upstream.client().list_users(CollectionId="c")["Users"]}
        assert "unsettled: 0" in pair.reconcile("--list").stdout


def test_a_command_unsettled_past_the_maximum_age_is_abandoned_and_listed(faceledger):
    with ledger_pair(faceledger, "--reconcile-max-age", "2") as pair:
        c = pair.client()
        c.create_collection(CollectionId="c")
        pair.proxy.fail(*[Fault("error_before", status=500, code="InternalServerError", target="CreateUser")] * 100)
        with pytest.raises(botocore.exceptions.ClientError):
            c.create_user(CollectionId="c", UserId="u", ClientRequestToken="doomed")
        wait_for(lambda: pair.pending() == 0, what="the abandonment")
        pair.proxy.heal()
        assert [e[0] for e in pair.ledger.events("type = 'CommandAbandoned'")] == ["CommandAbandoned"]
        listed = pair.reconcile("--list").stdout
        assert "abandoned: 1" in listed and "CreateUser  doomed" in listed
        assert any("upstream command abandoned" in line for line in pair.ledger.server.stderr_lines)
        entries = pair.ledger.raw("FaceLedger.GetCollectionHistory", {"CollectionId": "c"})[2]["Entries"]
        assert entries[-1]["Outcome"] == "ABANDONED" and "unsettled after" in entries[-1]["Message"]
        from test_metrics import sample, scrape
        metrics = scrape(pair.ledger)
        assert sample(metrics, "faceledger_reconciler_abandoned_total") == 1
        assert sample(metrics, "faceledger_reconciler_backlog") == 0


def test_concurrent_load_with_every_fault_kind_settles_exactly_once(pair):
    """Done-when of upstream mode: concurrent AssociateFaces and DisassociateFaces with faults of every kind;
    after healing and reconciling, (a) acknowledged responses replay identically, (b) every command settles,
    (c) the upstream's associations equal the ledger's, (d) the upstream executed each command once, (e) the
    ledger's audit shows every call the upstream (or the proxy in its place) received."""
    import random
    import threading
    c = pair.client()
    c.create_collection(CollectionId="c")
    faces = import_faces(pair, "c", 24)
    users = [f"u{i}" for i in range(6)]
    for user in users:
        c.create_user(CollectionId="c", UserId=user)
    kinds = [Fault("error_before", status=500, code="InternalServerError"),
             Fault("error_before", status=400, code="ThrottlingException"),
             Fault("error_after", status=503, code="ServiceUnavailableException"),
             Fault("reset_after"),
             Fault("delay", seconds=2.5)]  # past the ledger's 2 s upstream timeout
    for fault in kinds * 3:
        fault.target = random.choice(["AssociateFaces", "DisassociateFaces"])
    schedule = kinds * 3
    random.shuffle(schedule)

    acknowledged = []  # (operation, request, response)
    lock = threading.Lock()

    def worker(n):
        client = pair.client()
        rng = random.Random(n)
        for i in range(8):
            request = {"CollectionId": "c", "UserId": rng.choice(users), "FaceIds": rng.sample(faces, 2),
                       "ClientRequestToken": f"load-{n}-{i}"}
            operation = rng.choice(["associate_faces", "disassociate_faces"])
            if operation == "associate_faces":
                request["UserMatchThreshold"] = 0
            if i % 3 == 0:
                # A fault now and then, between this worker's calls.
                with lock:
                    if schedule:
                        pair.proxy.fail(schedule.pop())
            try:
                response = getattr(client, operation)(**request)
            except botocore.exceptions.ClientError as error:
                assert error.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 503), error.response
                continue
            response.pop("ResponseMetadata")
            with lock:
                acknowledged.append((operation, request, response))

    errors = []

    def guarded(n):
        try:
            worker(n)
        except BaseException as error:  # a thread's failure must fail the test, not vanish with the thread
            errors.append(repr(error))

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    pair.proxy.heal()
    assert not errors, errors
    assert acknowledged, "no request got through"
    # (b) every command settles: nothing pending, every accepted command settled or rejected, none abandoned.
    wait_for(lambda: pair.pending() == 0, timeout=120, what="the reconciler")
    unsettled = psql(pair.ledger_db, """
        SELECT count(*) FROM events a WHERE a.type = 'CommandAccepted' AND NOT EXISTS (
            SELECT 1 FROM events s WHERE s.command_id = a.command_id AND s.type IN ('CommandSettled', 'CommandRejected'))""")
    assert unsettled == "0"
    assert not pair.ledger.events("type = 'CommandAbandoned'")
    # (a) every acknowledged response replays identically with its token.
    client = pair.client()
    for operation, request, response in acknowledged:
        again = getattr(client, operation)(**request)
        again.pop("ResponseMetadata")
        assert again == response, request["ClientRequestToken"]
    # (c) the upstream's associations equal the ledger's.
    await_projected(pair)
    assert ledger_owners(pair, "c") == upstream_owners(pair, "c")
    # (d) each command executed once upstream (retries there are replays, recorded as such).
    executions = psql(pair.upstream.database_url, """
        SELECT client_token, count(*) FROM events WHERE type = 'CommandAccepted' AND client_token LIKE 'load-%'
        GROUP BY client_token HAVING count(*) > 1""")
    assert executions == ""
    settled_tokens = set(psql(pair.ledger_db, "SELECT DISTINCT a.data->>'upstreamToken' FROM events a JOIN events s "
                                              "ON s.command_id = a.command_id AND s.type = 'CommandSettled' "
                                              "WHERE a.type = 'CommandAccepted' AND a.data->>'upstreamToken' LIKE 'load-%'").split())
    executed_tokens = set(psql(pair.upstream.database_url, "SELECT client_token FROM events WHERE type = 'CommandAccepted' "
                                                           "AND client_token LIKE 'load-%'").split())
    assert settled_tokens == executed_tokens
    # (e) every call the proxy received for these operations is an attempt in the ledger's audit.
    calls = len([t for t, _ in pair.proxy.seen if t and t.split(".")[-1] in ("AssociateFaces", "DisassociateFaces")])
    attempts = psql(pair.ledger_db, "SELECT count(*) FROM events WHERE type = 'UpstreamAttempted' "
                                    "AND operation IN ('AssociateFaces', 'DisassociateFaces')")
    assert int(attempts) == calls


def test_two_ledger_instances_on_one_database_never_call_the_upstream_twice_for_a_command(pair):
    """Two `serve --upstream` on the same database, each with its reconciler, while calls keep failing
    before the upstream: every command is taken by one of them at a time, and each executes once."""
    import threading
    second = Api(Server(pair.faceledger, *pair.ledger_args(), env=pair.ledger_env()), pair.ledger_db)
    try:
        c = pair.client()
        c.create_collection(CollectionId="c")
        faces = import_faces(pair, "c", 16)
        for n in range(4):
            c.create_user(CollectionId="c", UserId=f"u{n}")
        # Half the calls fail before reaching the upstream: both reconcilers have work.
        pair.proxy.fail(*[Fault("error_before", status=500, code="InternalServerError", target="AssociateFaces")] * 8)
        errors = []

        def worker(instance, n):
            try:
                client = instance.client(retries={"total_max_attempts": 1})
                for i in range(4):
                    face = faces[n * 4 + i]
                    try:
                        client.associate_faces(CollectionId="c", UserId=f"u{n}", FaceIds=[face], UserMatchThreshold=0,
                                               ClientRequestToken=f"two-{n}-{i}")
                    except botocore.exceptions.ClientError as error:
                        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 503, error.response
            except BaseException as error:
                errors.append(repr(error))

        threads = [threading.Thread(target=worker, args=(pair.ledger if n % 2 else second, n)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        wait_for(lambda: pair.pending() == 0, timeout=120, what="the reconcilers")
        executions = psql(pair.upstream.database_url, "SELECT client_token, count(*) FROM events WHERE type = 'CommandAccepted' "
                                                      "AND client_token LIKE 'two-%' GROUP BY client_token HAVING count(*) > 1")
        assert executions == ""
        assert upstream_owners(pair, "c") == {face: f"u{i // 4}" for i, face in enumerate(faces)}
        calls = len([t for t, _ in pair.proxy.seen if t and t.endswith(".AssociateFaces")])
        attempts = psql(pair.ledger_db, "SELECT count(*) FROM events WHERE type = 'UpstreamAttempted' AND operation = 'AssociateFaces'")
        assert int(attempts) == calls
        await_projected(pair)
        assert ledger_owners(pair, "c") == upstream_owners(pair, "c")
    finally:
        second.server.stop()


def test_revert_in_upstream_mode_runs_its_commands_upstream(pair):
    from test_state import now
    c = pair.client()
    c.create_collection(CollectionId="c")
    f1, f2 = import_faces(pair, "c", 2)
    c.create_user(CollectionId="c", UserId="u1")
    c.associate_faces(CollectionId="c", UserId="u1", FaceIds=[f1])
    instant = now(pair.ledger)
    c.associate_faces(CollectionId="c", UserId="u1", FaceIds=[f2], UserMatchThreshold=0)  # the incident
    c.disassociate_faces(CollectionId="c", UserId="u1", FaceIds=[f1])
    base = [pair.faceledger, "revert", "--collection", "c", "--to", instant, "--database-url", pair.ledger_db]
    env = {**os.environ, **pair.ledger_env()}
    # Without the upstream the revert would change the ledger alone: refused.
    refused = subprocess.run(base, capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode == 1 and "ledgered in front of an upstream: give --upstream" in refused.stderr
    done = subprocess.run(base + ["--upstream", pair.proxy.url], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "reverted 2 of 2 faces" in done.stdout
    assert upstream_owners(pair, "c") == {f1: "u1", f2: None}
    await_projected(pair)
    assert ledger_owners(pair, "c") == {f1: "u1", f2: None}
    # Executed upstream under the ledger's key, recorded in the ledger under the operator.
    assert psql(pair.ledger_db, "SELECT DISTINCT principal FROM events WHERE type = 'UpstreamAttempted' "
                                "AND source_address = 'faceledger revert'").startswith("operator:")


def test_a_face_the_upstream_does_not_find_but_the_ledger_has_is_recorded_as_answered_and_logged(pair):
    c = pair.client()
    c.create_collection(CollectionId="c")
    [f] = import_faces(pair, "c", 1)
    c.create_user(CollectionId="c", UserId="u")
    pair.upstream.client().delete_faces(CollectionId="c", FaceIds=[f])  # behind the ledger's back
    answer = c.associate_faces(CollectionId="c", UserId="u", FaceIds=[f])
    assert answer["UnsuccessfulFaceAssociations"][0]["Reasons"] == ["FACE_NOT_FOUND"]
    entries = pair.ledger.raw("FaceLedger.GetFaceHistory", {"CollectionId": "c", "FaceId": f})[2]["Entries"]
    assert entries[-1]["Outcome"] == "FACE_NOT_FOUND"
    wait_for(lambda: any("the upstream does not find faces the ledger has" in line and f in line
                         for line in pair.ledger.server.stderr_lines), what="the log line")


def test_an_sdk_retry_of_a_command_without_a_token_joins_it_instead_of_running_it_twice(pair):
    """CreateCollection carries no ClientRequestToken. Its answer is lost (503 after the upstream created
    it); boto3 retries the same request by itself: the retry joins the unsettled command, which a probe
    resolves, and the client sees one successful creation — not ResourceAlreadyExistsException."""
    pair.proxy.fail(Fault("error_after", status=503, code="ServiceUnavailableException", target="CreateCollection"))
    answer = pair.client(retries=3).create_collection(CollectionId="retried")
    assert answer["StatusCode"] == 200 and answer["CollectionArn"].endswith("collection/retried")
    assert [e[0] for e in pair.upstream_events("operation = 'CreateCollection'")] == [
        "CommandAccepted", "CollectionCreated", "CommandSettled"]
    assert [e[0] for e in pair.ledger.events("operation = 'CreateCollection'")] == [
        "CommandAccepted", "UpstreamAttempted", "UpstreamAttempted", "CollectionCreated", "CommandSettled"]
    assert pair.pending() == 0
    # Settled, the same request later is a new command, as upstream: the collection exists.
    with pytest.raises(pair.client().exceptions.ResourceAlreadyExistsException):
        pair.client().create_collection(CollectionId="retried")


def test_images_up_to_rekognitions_limit_pass_through_and_reach_index_faces(pair):
    """Rekognition takes images up to 5 MB as Image.Bytes: the ledger admits such bodies for IndexFaces and
    the operations it passes through (the embedded engine's own limit is 1 MiB), and forwards them."""
    pair.client().create_collection(CollectionId="c")
    image = "A" * (5 << 20)
    for target in ("RekognitionService.IndexFaces", "RekognitionService.SearchFacesByImage"):
        seen = len(pair.proxy.seen)
        status, headers, body = pair.ledger.raw(target, {"CollectionId": "c", "Image": {"Bytes": image}})
        # The upstream here is an embedded FaceLedger, whose own limit refuses it: its answer comes back.
        assert (status, body["__type"]) == (413, "RequestEntityTooLargeException"), body
        assert [t for t, _ in pair.proxy.seen[seen:]] == [target]  # the ledger forwarded it
    assert psql(pair.ledger_db, "SELECT data->>'status' FROM events WHERE type = 'UpstreamAttempted' "
                                "AND operation = 'IndexFaces'") == "413"


def test_forget_faces_is_refused_in_upstream_mode_where_the_upstream_keeps_the_biometrics(pair):
    pair.client().create_collection(CollectionId="c")
    [face] = import_faces(pair, "c", 1)
    status, _, body = pair.ledger.raw("FaceLedger.ForgetFaces", {"CollectionId": "c", "FaceIds": [face]})
    assert status == 400 and "delete the faces with DeleteFaces" in body["message"]
    # DeleteFaces does it: executed upstream, and the ledger destroys its own copy of the embedding.
    pair.client().delete_faces(CollectionId="c", FaceIds=[face])
    assert psql(pair.ledger_db, "SELECT count(*) FROM face_keys") == "0"


def test_index_faces_answered_by_the_upstream_records_its_faces(pair):
    """IndexFaces as Amazon Rekognition answers it (the proxy stands in: the FaceLedger upstream has no image
    model): the faces it found enter the ledger, without embeddings, with their image and external ids."""
    pair.client().create_collection(CollectionId="c")
    face = "11111111-2222-3333-4444-555555555555"
    record = {"Face": {"FaceId": face, "ImageId": "66666666-7777-8888-9999-000000000000", "ExternalImageId": "photo-1",
                       "Confidence": 99.9, "BoundingBox": {"Width": 0.5, "Height": 0.5, "Left": 0.1, "Top": 0.1}},
              "FaceDetail": {"Confidence": 99.9}}
    pair.proxy.fail(Fault("answer", status=200, target="IndexFaces",
                          body={"FaceRecords": [record], "FaceModelVersion": "7.0", "UnindexedFaces": []}))
    answer = pair.client().index_faces(CollectionId="c", Image={"Bytes": b"jpeg"}, ExternalImageId="photo-1")
    assert [r["Face"]["FaceId"] for r in answer["FaceRecords"]] == [face]
    await_projected(pair)
    assert psql(pair.ledger_db, f"SELECT external_image_id, image_id, length(embedding) FROM rm_faces WHERE face_id = '{face}'") \
        == "photo-1|66666666-7777-8888-9999-000000000000|0"
    entries = pair.ledger.raw("FaceLedger.GetFaceHistory", {"CollectionId": "c", "FaceId": face})[2]["Entries"]
    assert [(e["Outcome"], e["Operation"]) for e in entries] == [("IMPORTED", "IndexFaces")]


def test_a_lost_index_faces_answer_is_resolved_by_the_faces_with_its_external_image_id(pair):
    """The upstream indexed the image but the answer was lost: the reconciler does not index it again; it
    finds the faces with the request's ExternalImageId that the ledger does not have (ListFaces), and
    settles the command with them."""
    c = pair.client()
    c.create_collection(CollectionId="c")
    # What the lost call left upstream: a face with the request's ExternalImageId.
    status, _, body = pair.upstream.raw("FaceLedger.ImportFaces", {"CollectionId": "c", "Faces": [
        {"Embedding": embedding(), "ExternalImageId": "photo-2"}]})
    assert status == 200, body
    face = body["FaceRecords"][0]["Face"]["FaceId"]
    pair.proxy.fail(Fault("error_after", status=503, code="ServiceUnavailableException", target="IndexFaces"))
    with pytest.raises(botocore.exceptions.ClientError):
        c.index_faces(CollectionId="c", Image={"Bytes": b"jpeg"}, ExternalImageId="photo-2")
    wait_for(lambda: pair.pending() == 0, what="the reconciler")
    attempts = psql(pair.ledger_db, "SELECT string_agg(data->>'by' || ':' || (data->>'verdict'), ',' ORDER BY position) "
                                    "FROM events WHERE type = 'UpstreamAttempted' AND operation = 'IndexFaces'")
    assert attempts == "request:RETRY,probe:SETTLED"
    # Not sent again: the upstream saw one IndexFaces (the lost one) and the probe's ListFaces.
    assert [t for t, _ in pair.proxy.seen if t.endswith(".IndexFaces")] == ["RekognitionService.IndexFaces"]
    await_projected(pair)
    assert face in ledger_owners(pair, "c")


def test_a_session_token_goes_upstream_with_every_call(faceledger):
    with ledger_pair(faceledger) as pair:
        pair.ledger.server.stop()
        env = {**pair.ledger_env(), "AWS_SESSION_TOKEN": "session-token-1"}
        pair.ledger = Api(Server(pair.faceledger, *pair.ledger_args(), env=env), pair.ledger_db)
        seen = len(pair.proxy.seen_headers)
        pair.client().create_collection(CollectionId="c")  # ledgered
        pair.client().list_collections()  # passed through
        calls = pair.proxy.seen_headers[seen:]
        assert len(calls) == 2 and all(h.get("x-amz-security-token") == "session-token-1" for h in calls)
        assert all("x-amz-security-token" in h["authorization"] for h in calls)  # signed with it
