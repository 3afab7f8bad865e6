"""Admission at the HTTP front: what the headers alone can refuse is refused before the body is read,
the 64 MiB ImportFaces limit is for roles that may import, a process-wide byte budget turns what the
server cannot hold into 503, and a silent connection is closed.

Requests here are written on raw sockets, so that a test can send the headers and withhold the body:
an answer that arrives while the body is still unsent proves the body was not needed to give it.
"""
import contextlib
import datetime
import json
import select
import socket
import threading
import urllib.request

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from api import Api
from conftest import BIN, KEYS, fresh_database, psql, temporary_data_dir, write_credentials
from server import Server

MIB = 1 << 20
SIXTY_MIB = 60 * MIB
IMPORT = "FaceLedger.ImportFaces"
STRANGER = ("AKIDSTRANGER0000001", "stranger-secret-000000000000000000000001")


def import_body(collection_id, size):
    """A valid ImportFaces of one face, padded (with a member the operation ignores) to exactly `size` bytes."""
    text = json.dumps({"CollectionId": collection_id, "Faces": [{"Embedding": [0.25, 0.5, 0.75]}], "Padding": ""})
    return text.replace('"Padding": ""', '"Padding": "' + "x" * (size - len(text)) + '"').encode()


def signed_head(url, target, body, key=None, service="rekognition", chunked=False):
    """The head of a POST of `body` to `url`, signed over `body` with `key` (id, secret) like an SDK
    signs it, or unsigned without a key. With `chunked`, the body is to be sent chunked."""
    request = AWSRequest(method="POST", url=url + "/", data=body,
                         headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    if key:
        SigV4Auth(Credentials(*key), service, "us-east-1").add_auth(request)
    host = url.split("//", 1)[1]
    lines = ["POST / HTTP/1.1", f"Host: {host}"] + [f"{k}: {v}" for k, v in request.headers.items()]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect(url):
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=30)


def read_response(connection):
    """(status, headers with lower-case names, parsed JSON body) of one response."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"the server closed the connection without an answer: {data!r}"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(rest) < int(headers.get("content-length", 0)):
        chunk = connection.recv(65536)
        assert chunk, "the server closed the connection in the middle of its answer"
        rest += chunk
    return status, headers, json.loads(rest) if rest else None


def answer_without_body(url, head):
    """Sends only `head` (which announces a body) and returns the answer, read without sending the body."""
    with connect(url) as connection:
        connection.settimeout(10)  # a server waiting for the body never answers: the test fails here
        connection.sendall(head)
        return read_response(connection)


def log_position(api):
    return int(psql(api.database_url, "SELECT coalesce(max(position), 0) FROM events"))


@contextlib.contextmanager
def serving(*args, env=None):
    """A `faceledger serve` with the test keys on a fresh database, and collection `big`."""
    with fresh_database() as database_url, temporary_data_dir() as directory:
        with Server(BIN, "--database-url", database_url, "--credentials-file", write_credentials(directory), *args,
                    env=env) as server:
            api = Api(server, database_url)
            api.client().create_collection(CollectionId="big")
            yield api
            server.stop()


@pytest.fixture(scope="module")
def front():
    """One server for the tests that need no particular limits."""
    with serving() as api:
        yield api


def expired(monkeypatch):
    real_now = botocore.auth.get_current_datetime
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: real_now() - datetime.timedelta(minutes=6))


REFUSED_BY_THEIR_HEADERS = [
    # (id, key, service, set-up, status, __type)
    ("unsigned", None, "rekognition", None, 403, "MissingAuthenticationTokenException"),
    ("unknown-key", STRANGER, "rekognition", None, 400, "UnrecognizedClientException"),
    ("expired", KEYS["writer"][:2], "rekognition", expired, 400, "InvalidSignatureException"),
    ("scoped-to-another-service", KEYS["writer"][:2], "s3", None, 400, "InvalidSignatureException"),
]


@pytest.mark.parametrize("case", REFUSED_BY_THEIR_HEADERS, ids=[c[0] for c in REFUSED_BY_THEIR_HEADERS])
def test_a_request_whose_headers_fail_is_refused_before_its_60_mib_body_is_sent(front, monkeypatch, case):
    _, key, service, set_up, status, code = case
    if set_up:
        set_up(monkeypatch)
    before = log_position(front)
    head = signed_head(front.url, IMPORT, import_body("big", SIXTY_MIB), key=key, service=service)
    assert b"Content-Length: %d\r\n" % SIXTY_MIB in head and b"Expect" not in head and b"Connection: close" not in head

    got_status, headers, body = answer_without_body(front.url, head)

    assert (got_status, body["__type"], headers["x-amzn-errortype"]) == (status, code, code)
    assert headers["x-amzn-requestid"]
    assert log_position(front) == before  # an unauthenticated request is never recorded


def test_a_malformed_authorization_header_is_refused_before_the_body(front):
    head = (f"POST / HTTP/1.1\r\nHost: {front.url.split('//', 1)[1]}\r\nX-Amz-Target: {IMPORT}\r\n"
            f"Authorization: AWS4-HMAC-SHA256 Credential=nothing\r\nX-Amz-Date: 20260101T000000Z\r\n"
            f"Content-Length: {SIXTY_MIB}\r\n\r\n").encode()
    status, _, body = answer_without_body(front.url, head)
    assert (status, body["__type"]) == (400, "IncompleteSignatureException")


def test_only_roles_that_may_import_may_send_more_than_1_mib(front):
    body = import_body("big", 2 * MIB)
    before = log_position(front)
    # An auditor may not import: its 2 MiB is refused from the headers, and nothing is recorded.
    status, headers, answer = answer_without_body(front.url, signed_head(front.url, IMPORT, body, key=KEYS["auditor"][:2]))
    assert (status, answer["__type"]) == (413, "RequestEntityTooLargeException")
    assert str(MIB) in answer["message"]
    assert log_position(front) == before
    # Sent chunked, without a declared length, it is refused once 1 MiB of it has arrived.
    with connect(front.url) as connection:
        connection.sendall(signed_head(front.url, IMPORT, body, key=KEYS["auditor"][:2], chunked=True))
        for start in range(0, len(body), 256 * 1024):
            piece = body[start:start + 256 * 1024]
            try:
                connection.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            except OSError:
                break  # the server answered and stopped reading: the answer is waiting
        status, _, answer = read_response(connection)
    assert (status, answer["__type"]) == (413, "RequestEntityTooLargeException")
    assert log_position(front) == before
    # Within 1 MiB, the auditor's denied import is recorded as an attempt, as every denied command is.
    status, headers, answer = front.raw(IMPORT, import_body("big", 4096), role="auditor")
    assert (status, answer["__type"]) == (400, "AccessDeniedException")
    rows = psql(front.database_url, f"SELECT type, principal FROM events WHERE position > {before} ORDER BY position")
    assert rows.splitlines() == ["CommandRejected|carol"]

    # A writer may send the same 2 MiB, declared or chunked, and it is imported.
    status, _, answer = front.raw(IMPORT, body, role="writer")
    assert status == 200, answer
    assert len(answer["FaceRecords"]) == 1
    with connect(front.url) as connection:
        connection.sendall(signed_head(front.url, IMPORT, body, key=KEYS["writer"][:2], chunked=True))
        for start in range(0, len(body), 256 * 1024):
            piece = body[start:start + 256 * 1024]
            connection.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        connection.sendall(b"0\r\n\r\n")
        status, _, answer = read_response(connection)
    assert status == 200, answer
    assert len(answer["FaceRecords"]) == 1


@pytest.fixture(scope="module")
def tight():
    """A server whose byte budget holds one 60 MiB body but not two, and whose connections may stay
    silent for 2 seconds."""
    # The budget by flag, the idle timeout by environment variable: both ways reach the server.
    with serving("--max-body-bytes-in-flight", str(100 * MIB), env={"FACELEDGER_IDLE_TIMEOUT": "2"}) as api:
        yield api


def test_a_body_the_budget_cannot_take_is_503_at_once_and_the_budget_comes_back(tight):
    body = import_body("big", SIXTY_MIB)
    head = signed_head(tight.url, IMPORT, body, key=KEYS["writer"][:2])
    first, second = connect(tight.url), connect(tight.url)
    with first, second:
        # Both announce 60 MiB; the budget holds one. Whichever the server takes first waits for its
        # body, the other is answered 503 at once.
        first.sendall(head)
        second.sendall(head)
        ready, _, _ = select.select([first, second], [], [], 10)
        assert len(ready) == 1, "exactly one of the two must be answered before sending its body"
        refused, admitted = (first, second) if ready[0] is first else (second, first)
        status, headers, answer = read_response(refused)
        assert (status, answer["__type"], headers["x-amzn-errortype"]) == (503, "ServiceUnavailableException", "ServiceUnavailableException")
        admitted.sendall(body)
        status, _, answer = read_response(admitted)
        assert status == 200, answer
    # The budget is whole again: the next 60 MiB import is served.
    status, _, answer = tight.raw(IMPORT, body, role="writer")
    assert status == 200, answer


def test_a_silent_connection_is_closed_and_gives_its_budget_back(tight):
    body = import_body("big", SIXTY_MIB)
    with connect(tight.url) as silent:
        silent.sendall(signed_head(tight.url, IMPORT, body, key=KEYS["writer"][:2]))
        silent.sendall(body[:MIB])  # then nothing more
        silent.settimeout(30)  # a server without an idle timeout waits for ever: the test fails here
        try:
            closed = silent.recv(65536) == b""
        except ConnectionResetError:  # closed with bytes of ours still unread: as good a close
            closed = True
        assert closed, "the server must close a connection that stays silent past its idle timeout"
    # Its 60 MiB reservation went with it.
    status, _, answer = tight.raw(IMPORT, body, role="writer")
    assert status == 200, answer


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_concurrent_maximal_imports_get_200_or_503_and_the_server_lives_on(tight):
    body = import_body("big", SIXTY_MIB)
    results = [None] * 4

    def send(i):
        try:
            results[i] = tight.raw(IMPORT, body, role="writer")[:3:2]
        except Exception as error:  # noqa: BLE001 - recorded, asserted on below
            results[i] = error

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for result in results:
        assert isinstance(result, tuple), result
        status, answer = result
        assert status == 200 or (status, answer["__type"]) == (503, "ServiceUnavailableException"), (status, answer)
    assert any(status == 200 for status, _ in results)
    assert tight.server.process.poll() is None
    with urllib.request.urlopen(tight.url + "/health", timeout=10) as health:
        assert health.status == 200
    # The budget (100 MiB) lets one 60 MiB body in at a time: the server's peak stays near what one
    # import costs (about 230 MiB on the debug build; each further body at once adds about 100 MiB,
    # four at once peak at about 430 MiB).
    assert vm_hwm_kib(tight.server.process.pid) < 320 * 1024
