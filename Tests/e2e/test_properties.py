"""Random command sequences from concurrent clients: live read models = a rebuild = an independent fold
of the log, and `state --as-of` at every observed instant = what was live then."""
import json
import random
import subprocess
import threading

import botocore

from conftest import psql
from test_rebuild import snapshot
from test_state import now

COLLECTIONS = ("a", "b")
USERS = [f"user{i}" for i in range(6)]


def random_step(api, client, rng, faces):
    collection = rng.choice(COLLECTIONS)
    pool = faces[collection]
    operation = rng.choice(["create_user", "delete_user", "import", "associate", "associate", "disassociate", "delete_faces"])
    try:
        if operation == "create_user":
            client.create_user(CollectionId=collection, UserId=rng.choice(USERS))
        elif operation == "delete_user":
            client.delete_user(CollectionId=collection, UserId=rng.choice(USERS))
        elif operation == "import":
            pool.extend(api.import_faces(collection, [[1, rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3)] for _ in range(rng.randint(1, 4))]))
        elif operation == "associate" and pool:
            client.associate_faces(CollectionId=collection, UserId=rng.choice(USERS), FaceIds=rng.sample(pool, min(len(pool), rng.randint(1, 4))),
                                   UserMatchThreshold=rng.choice([0, 50, 90]))
        elif operation == "disassociate" and pool:
            client.disassociate_faces(CollectionId=collection, UserId=rng.choice(USERS), FaceIds=rng.sample(pool, min(len(pool), 2)))
        elif operation == "delete_faces" and pool:
            client.delete_faces(CollectionId=collection, FaceIds=rng.sample(pool, 1))
    except botocore.exceptions.ClientError as error:  # client errors are part of the game (and of the log)
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400, error


def live_state(client, collection):
    users = sorted(u["UserId"] for u in client.list_users(CollectionId=collection)["Users"])
    return [{"UserId": u, "FaceIds": sorted(f["FaceId"] for f in client.list_faces(CollectionId=collection, UserId=u)["Faces"])} for u in users]


def fold_log(database_url):
    """An independent fold of the log (not the server's evolve): collection -> user -> set of faces, and face owners."""
    rows = psql(database_url, "SELECT json_build_object('c', collection_id, 't', type, 'd', data) FROM events ORDER BY position")
    users, owners = {}, {}
    for line in rows.splitlines():
        e = json.loads(line)
        c, t, d = e["c"], e["t"], e["d"]
        if t == "CollectionCreated":
            users[c], owners[c] = {}, {}
        elif t == "CollectionDeleted":
            users.pop(c, None), owners.pop(c, None)
        elif t == "UserCreated":
            users[c][d["userId"]] = set()
        elif t == "UserDeleted":
            del users[c][d["userId"]]
        elif t == "FaceImported":
            owners[c][d["faceId"]] = None
        elif t == "FaceAssociated":
            users[c][d["userId"]].add(d["faceId"])
            owners[c][d["faceId"]] = d["userId"]
        elif t == "FaceDisassociated":
            users[c][d["userId"]].discard(d["faceId"])
            owners[c][d["faceId"]] = None
        elif t == "FaceDeleted":
            del owners[c][d["faceId"]]
    return users, owners


def test_random_concurrent_sequences_keep_every_view_equal(faceledger, api):
    admin = api.client()
    for collection in COLLECTIONS:
        admin.create_collection(CollectionId=collection)
    faces = {c: [] for c in COLLECTIONS}
    observations = []
    for round in range(4):
        def client_run(seed):
            rng, client = random.Random(seed), api.client()
            for _ in range(12):
                random_step(api, client, rng, faces)
        threads = [threading.Thread(target=client_run, args=(round * 10 + i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Quiescent: the instant and what is live at it.
        observations.append((now(api), {c: live_state(admin, c) for c in COLLECTIONS}))

    for instant, live in observations:
        for collection in COLLECTIONS:
            result = subprocess.run([faceledger, "state", "--collection", collection, "--as-of", instant, "--json",
                                     "--database-url", api.database_url], capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
            users = json.loads(result.stdout)["Users"]
            assert [{"UserId": u["UserId"], "FaceIds": sorted(u["FaceIds"])} for u in users] == live[collection], (instant, collection)

    admin.list_collections()  # reads wait for the projector to fold this server's writes
    live_models = snapshot(api)
    users, owners = fold_log(api.database_url)
    rm_owners = psql(api.database_url, 'SELECT collection_id, face_id, coalesce(user_id, \'\') FROM rm_faces ORDER BY collection_id COLLATE "C", face_id COLLATE "C"')
    expected_owners = "\n".join(f"{c}|{f}|{o or ''}" for c in sorted(owners) for f, o in sorted(owners[c].items()))
    assert rm_owners == expected_owners
    rm_users = psql(api.database_url, 'SELECT collection_id, user_id, face_count FROM rm_users ORDER BY collection_id COLLATE "C", user_id COLLATE "C"')
    assert rm_users == "\n".join(f"{c}|{u}|{len(fs)}" for c in sorted(users) for u, fs in sorted(users[c].items()))

    rebuilt = subprocess.run([faceledger, "rebuild", "--database-url", api.database_url], capture_output=True, text=True, timeout=120)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert snapshot(api) == live_models
