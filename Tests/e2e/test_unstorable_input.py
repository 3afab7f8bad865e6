"""A string the event log cannot store (U+0000: PostgreSQL's jsonb refuses the escape) is refused at the
request gate, alone: it never reaches a batch, so the good requests it races with all succeed."""
import threading

from api import embedding
from conftest import psql

RS = "RekognitionService."
GOOD = 30


def test_a_nul_fails_alone_while_30_concurrent_good_requests_in_its_collection_succeed(api):
    admin = api.client()
    admin.create_collection(CollectionId="c")
    holders = [f"holder-{i}" for i in range(GOOD // 2)]
    for user in holders:
        admin.create_user(CollectionId="c", UserId=user)
    faces = api.import_faces("c", [embedding() for _ in holders])
    writers = [api.client("writer") for _ in range(GOOD)]  # one client a thread; made before the race starts
    nul_senders = ["writer", "auditor", "writer", "auditor"]
    start = threading.Barrier(GOOD + len(nul_senders))
    outcomes, errors = {}, []

    def good(i):
        try:
            start.wait(timeout=60)
            if i < len(holders):
                outcomes[i] = writers[i].create_user(CollectionId="c", UserId=f"new-{i}")
            else:
                j = i - len(holders)
                outcomes[i] = writers[i].associate_faces(CollectionId="c", UserId=holders[j], FaceIds=[faces[j]])
        except Exception as error:  # noqa: BLE001 - every failure is reported below
            errors.append((i, error))

    def nul(k, role):
        start.wait(timeout=60)
        body = '{"CollectionId": "c", "UserId": "evil\\u0000%d"}' % k
        outcomes[("nul", k)] = (role,) + api.raw(RS + "CreateUser", body, role=role)

    threads = [threading.Thread(target=good, args=(i,)) for i in range(GOOD)]
    threads += [threading.Thread(target=nul, args=(k, role)) for k, role in enumerate(nul_senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)

    assert errors == []
    for i in range(len(holders), GOOD):
        assert outcomes[i]["AssociatedFaces"] == [{"FaceId": faces[i - len(holders)]}]
    request_ids = []
    for k in range(len(nul_senders)):
        role, status, headers, body = outcomes[("nul", k)]
        assert (status, body["__type"]) == (400, "InvalidParameterException"), (role, body)
        assert body["message"] == "Value at 'UserId' must not contain the character U+0000", (role, body)
        request_ids.append(headers["x-amzn-RequestId"])

    # Nothing of the NUL requests changed state: each left one rejection, which records no request body.
    users = [u["UserId"] for u in admin.list_users(CollectionId="c")["Users"]]
    assert sorted(users) == sorted(holders + [f"new-{i}" for i in range(len(holders))])
    for request_id in request_ids:
        rows = psql(api.database_url, "SELECT type, collection_id, data->>'request' IS NULL, data->'error'->>'code' "
                                      f"FROM events WHERE request_id = '{request_id}'")
        assert rows == "CommandRejected|c|t|InvalidParameterException", rows
    assert psql(api.database_url, "SELECT count(*) FROM events WHERE data::text LIKE '%evil%'") == "0"
    assert not [line for line in api.server.stderr_lines if "error" in line.lower()]
