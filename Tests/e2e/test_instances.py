"""Several instances: three `faceledger serve` on one database under concurrent load through all three.
The invariants hold across instances: one owner per face, at most 100 faces per user, identical
idempotent replays whichever instance a retry reaches, one active projector, and the same reads from
every instance."""
import random
import threading
from collections import defaultdict

import botocore
import pytest

from api import Api, embedding
from conftest import KEYS, psql, write_credentials
from server import Server
from test_projector import await_folded, await_owner


@pytest.fixture
def instances(faceledger, database_url, data_dir):
    credentials = write_credentials(data_dir)
    servers = [Server(faceledger, "--database-url", database_url, "--credentials-file", credentials) for _ in range(3)]
    try:
        yield [Api(server, database_url) for server in servers]
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.stop()


def test_three_instances_under_concurrent_load_keep_every_invariant(instances):
    first = instances[0]
    first.client().create_collection(CollectionId="c")
    faces = first.import_faces("c", [embedding() for _ in range(150)])
    users = ["big", "u1", "u2", "u3"]
    for user in users:
        instances[random.randrange(3)].client().create_user(CollectionId="c", UserId=user)

    answers = defaultdict(list)  # token → [(request, response)] from whichever instances answered
    errors = []
    lock = threading.Lock()

    def worker(n):
        rng = random.Random(n)
        clients = [api.client(retries={"total_max_attempts": 1}) for api in instances]
        try:
            for i in range(25):
                # Most go to "big", so its 100-face limit is raced for; the rest spread out.
                user = "big" if rng.random() < 0.6 else rng.choice(users)
                request = {"CollectionId": "c", "UserId": user, "FaceIds": rng.sample(faces, 5),
                           "ClientRequestToken": f"w{n}-{i}"}
                operation = "associate_faces" if rng.random() < 0.75 else "disassociate_faces"
                if operation == "associate_faces":
                    request["UserMatchThreshold"] = 0
                # The request, and now and then its retry, each through a random instance.
                for _ in range(2 if rng.random() < 0.3 else 1):
                    client = rng.choice(clients)
                    response = getattr(client, operation)(**request)
                    response.pop("ResponseMetadata")
                    with lock:
                        answers[request["ClientRequestToken"]].append((operation, request, response))
        except BaseException as error:  # a thread's failure fails the test
            errors.append(repr(error))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors

    # Identical replays, whichever instance answered, now too.
    for token, seen in answers.items():
        operation, request, response = seen[0]
        assert all(other == response for _, _, other in seen[1:]), token
        again = getattr(random.choice(instances).client(), operation)(**request)
        again.pop("ResponseMetadata")
        assert again == response, token

    # One owner per face and at most 100 faces per user at every point of the log (a fold of it).
    rows = psql(first.database_url, "SELECT type, data->>'faceId', data->>'userId' FROM events "
                                    "WHERE type IN ('FaceAssociated', 'FaceDisassociated') ORDER BY position")
    owner, counts = {}, defaultdict(int)
    for line in rows.splitlines():
        kind, face, user = line.split("|")
        if kind == "FaceAssociated":
            assert owner.get(face) is None, f"{face} associated with {user} while {owner.get(face)} held it"
            owner[face] = user
            counts[user] += 1
            assert counts[user] <= 100, user
        else:
            assert owner.get(face) == user
            owner[face] = None
            counts[user] -= 1
    assert counts["big"] > 50  # the limit was within reach

    # One active projector, one of the three; and every instance reads the same state once caught up.
    servers = [api.server for api in instances]
    await_owner(first.database_url, *servers)
    await_folded(first.server)  # the read models are shared: folded once, read alike by all
    listed = []
    for api in instances:
        pages = api.client().get_paginator("list_faces").paginate(CollectionId="c")
        listed.append(sorted((f["FaceId"], f.get("UserId")) for page in pages for f in page["Faces"]))
    assert listed[0] == listed[1] == listed[2]
    assert dict(listed[0]) == {face: owner.get(face) for face in faces}
