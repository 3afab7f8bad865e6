"""`faceledger rebuild` while the server serves: no read fails, no write is lost, the result equals the live models."""
import subprocess
import threading
import time

from conftest import psql

MODELS = {
    "rm_collections": "SELECT collection_id, arn, created_at, created_position, face_count, user_count FROM rm_collections ORDER BY 1",
    "rm_users": "SELECT collection_id, user_id, created_at, face_count, md5(coalesce(user_vector, '')) FROM rm_users ORDER BY 1, 2",
    "rm_faces": "SELECT collection_id, face_id, user_id, external_image_id, image_id, confidence, md5(embedding), indexed_at FROM rm_faces ORDER BY 1, 2",
}


def snapshot(api):
    return {table: psql(api.database_url, sql) for table, sql in MODELS.items()}


def settle(api, c):
    """Waits until the projector has folded the whole log (a read waits for this process's writes)."""
    c.list_collections()
    head = psql(api.database_url, "SELECT max(position) FROM events")
    assert psql(api.database_url, "SELECT position FROM projector_checkpoints WHERE projector = 'read_models'") == head


def test_rebuild_while_readers_and_writers_hammer(faceledger, api):
    c = api.client()
    c.create_collection(CollectionId="c")
    for user in range(5):
        c.create_user(CollectionId="c", UserId=f"u{user}")
    faces = api.import_faces("c", [[1, i / 1000] for i in range(300)])
    c.associate_faces(CollectionId="c", UserId="u0", FaceIds=faces[:50], UserMatchThreshold=0)

    stop = threading.Event()
    failures, written = [], []

    def reader():
        client = api.client()
        while not stop.is_set():
            try:
                client.list_faces(CollectionId="c", MaxResults=100)
                client.list_users(CollectionId="c")
                client.describe_collection(CollectionId="c")
            except Exception as error:  # any failure is a finding
                failures.append(error)

    def writer(user):
        client = api.client()
        for i in range(50, 300):
            if stop.is_set() or i % 5 != user:
                continue
            r = client.associate_faces(CollectionId="c", UserId=f"u{user}", FaceIds=[faces[i]], UserMatchThreshold=0)
            written.extend(f["FaceId"] for f in r["AssociatedFaces"])

    threads = [threading.Thread(target=reader) for _ in range(2)] + [threading.Thread(target=writer, args=(u,)) for u in range(1, 5)]
    for t in threads:
        t.start()
    result = subprocess.run([faceledger, "rebuild", "--database-url", api.database_url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("rebuilt the read models from ")
    for t in threads[2:]:
        t.join()
    stop.set()
    for t in threads[:2]:
        t.join()
    assert failures == []

    settle(api, c)
    owned = {f["FaceId"]: f.get("UserId") for f in c.list_faces(CollectionId="c")["Faces"]}
    assert all(owned[face] is not None for face in written)  # no acknowledged write lost
    live = snapshot(api)
    again = subprocess.run([faceledger, "rebuild", "--database-url", api.database_url], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert snapshot(api) == live  # a rebuild reproduces the live models exactly
    leftovers = psql(api.database_url, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'rm\\_%\\_rebuild' OR tablename LIKE 'rm\\_%\\_old'")
    assert leftovers == "0"


def test_a_rebuild_interrupted_earlier_is_started_afresh_and_shows_progress_on_a_terminal(faceledger, api):
    c = api.client()
    c.create_collection(CollectionId="c")
    c.create_user(CollectionId="c", UserId="u")
    settle(api, c)
    live = snapshot(api)
    # What an interrupted rebuild leaves behind: half-filled fresh tables.
    psql(api.database_url, "CREATE TABLE rm_users_rebuild (LIKE rm_users INCLUDING ALL); "
                           "INSERT INTO rm_users_rebuild SELECT * FROM rm_users; CREATE TABLE rm_faces_old (x int)")
    # `script` gives the command a terminal, where it shows its progress.
    command = f"{faceledger} rebuild --database-url '{api.database_url}'"
    result = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout
    assert "rebuild: " in result.stdout and " events (100.0%)" in result.stdout and "events/s, ETA" in result.stdout
    assert snapshot(api) == live
    leftovers = psql(api.database_url, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'rm\\_%\\_rebuild' OR tablename LIKE 'rm\\_%\\_old'")
    assert leftovers == "0"
