"""Privacy: embeddings in the log are encrypted under per-face data keys; forgetting destroys the keys, so
nothing can read the biometrics back, while the ledger stays whole and verifiable."""
import base64
import os
import struct
import subprocess
import threading
import time

import pytest

from api import Api, embedding
from conftest import ADMIN_URL, KEYS, psql, write_credentials
from server import Server

# Values whose float32 bytes and decimal digits are unmistakable in a dump.
TELLTALE = [0.7071067, -0.3141592, 0.2718281, 0.1618033, -0.5772156, 0.6931471, -0.1414213, 0.1732050,
            0.2236067, -0.2449489, 0.2645751, 0.2828427, -0.3316624, 0.3605551, 0.3872983, -0.4123105]


def float_hex(values):
    return struct.pack("<%df" % len(values), *values).hex()


def dump(database_url, *tables):
    """pg_dump of the whole database (or of `tables`), as text."""
    args = ["pg_dump", "--no-owner", "--data-only", *(f"--table={t}" for t in tables), database_url]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def telltales_in(text):
    """What of TELLTALE's bytes or digits the text holds."""
    found = []
    packed = float_hex(TELLTALE)
    if packed in text.replace("\\\\x", "").lower():
        found.append("float bytes")
    found += [f"digits of {v}" for v in TELLTALE[:4] if f"{abs(v):.7f}"[2:] in text]
    return found


def history(api, collection, face):
    status, _, body = api.raw("FaceLedger.GetFaceHistory", {"CollectionId": collection, "FaceId": face}, role="auditor")
    assert status == 200, body
    return body["Entries"]


def test_forgetting_a_face_leaves_no_way_to_its_embedding(faceledger, api):
    c = api.client()
    c.create_collection(CollectionId="c")
    forgotten, kept, probe = api.import_faces("c", [TELLTALE, embedding(dim=16), [v + 0.001 for v in TELLTALE]])
    c.create_user(CollectionId="c", UserId="u")
    c.associate_faces(CollectionId="c", UserId="u", FaceIds=[forgotten], UserMatchThreshold=0)
    # The log never holds the embedding in clear: each FaceImported names its data key, kept apart.
    assert telltales_in(dump(api.database_url, "events")) == []
    # …while the read models (disposable, cleared by a forget) do: the detector finds what it looks for.
    assert "float bytes" in telltales_in(dump(api.database_url, "rm_faces"))
    assert psql(api.database_url, "SELECT count(*) FROM face_keys WHERE face_id = '%s'" % forgotten) == "1"
    matches = c.search_faces(CollectionId="c", FaceId=probe, FaceMatchThreshold=90)["FaceMatches"]
    assert forgotten in [m["Face"]["FaceId"] for m in matches]  # the biometrics work before

    # Only an admin may forget.
    for role in ("writer", "auditor"):
        status, _, body = api.raw("FaceLedger.ForgetFaces", {"CollectionId": "c", "FaceIds": [forgotten]}, role=role)
        assert status == 400 and body["__type"] == "AccessDeniedException", role
    from test_state import now
    before_forget = now(api)
    status, _, body = api.raw("FaceLedger.ForgetFaces", {"CollectionId": "c", "FaceIds": [forgotten, "1" * 8 + "-1111-1111-1111-" + "1" * 12],
                                                         "Reason": "data subject request #42"})
    assert status == 200, body
    assert body["ForgottenFaces"] == [forgotten] and body["UnsuccessfulFaceForgets"][0]["Reasons"] == ["FACE_NOT_FOUND"]

    # No path leads back: the key is gone, the read models cleared, search no longer matches.
    assert psql(api.database_url, "SELECT count(*) FROM face_keys WHERE face_id = '%s'" % forgotten) == "0"
    matches = c.search_faces(CollectionId="c", FaceId=probe, FaceMatchThreshold=0)["FaceMatches"]
    assert forgotten not in [m["Face"]["FaceId"] for m in matches]
    assert telltales_in(dump(api.database_url)) == []
    # The face stays, with its user and its history.
    assert c.list_faces(CollectionId="c", UserId="u")["Faces"][0]["FaceId"] == forgotten
    entries = history(api, "c", forgotten)
    assert [e["Outcome"] for e in entries] == ["IMPORTED", "ASSOCIATED", "FORGOTTEN"]
    assert entries[-1]["Message"] == "data subject request #42" and entries[-1]["Principal"] == KEYS["admin"][2]
    # The ledger verifies; a rebuild, a restart and `state --as-of` before the forget all work without it.
    env = {**os.environ}
    verified = subprocess.run([faceledger, "verify", "--database-url", api.database_url], capture_output=True, text=True, env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    rebuilt = subprocess.run([faceledger, "rebuild", "--database-url", api.database_url], capture_output=True, text=True, env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert psql(api.database_url, "SELECT length(embedding) FROM rm_faces WHERE face_id = '%s'" % forgotten) == "0"
    as_of = subprocess.run([faceledger, "state", "--database-url", api.database_url, "--collection", "c", "--as-of", before_forget,
                            "--json"], capture_output=True, text=True, env=env)
    assert as_of.returncode == 0 and forgotten in as_of.stdout, as_of.stderr  # the state then, without the biometrics
    assert psql(api.database_url, "SELECT length(embedding) > 0 FROM rm_faces WHERE face_id = '%s'" % kept) == "t"
    assert telltales_in(dump(api.database_url)) == []


def test_deleting_a_face_that_belongs_to_nobody_forgets_it_and_the_cli_forgets_too(faceledger, api):
    c = api.client()
    c.create_collection(CollectionId="c")
    lonely, other = api.import_faces("c", [embedding(dim=16), embedding(dim=16)])
    c.delete_faces(CollectionId="c", FaceIds=[lonely])
    assert psql(api.database_url, "SELECT count(*) FROM face_keys WHERE face_id = '%s'" % lonely) == "0"
    assert [e["Outcome"] for e in history(api, "c", lonely)] == ["IMPORTED", "FORGOTTEN", "DELETED"]
    forgot = subprocess.run([faceledger, "forget", "--database-url", api.database_url, "--collection", "c", "--face-id", other,
                             "--reason", "retention"], capture_output=True, text=True)
    assert forgot.returncode == 0, forgot.stderr
    assert f"forgotten: {other}" in forgot.stdout
    entry = history(api, "c", other)[-1]
    assert (entry["Outcome"], entry["Message"]) == ("FORGOTTEN", "retention") and entry["Principal"].startswith("operator:")


def test_a_wrong_or_missing_master_key_refuses_to_start(faceledger, database_url, data_dir, tmp_path):
    credentials = write_credentials(data_dir)
    with Server(faceledger, "--database-url", database_url, "--credentials-file", credentials) as server:
        Api(server, database_url).client().create_collection(CollectionId="c")
        Api(server, database_url).import_faces("c", [embedding(dim=16)])
        server.stop()
    wrong = tmp_path / "wrong-key"
    wrong.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    started = subprocess.run([faceledger, "serve", "--port", "0", "--database-url", database_url, "--credentials-file", credentials,
                              "--master-key-file", str(wrong)], capture_output=True, text=True, timeout=120)
    assert started.returncode != 0 and "encrypted under master key" in started.stderr, started.stderr
    no_key = {k: v for k, v in os.environ.items() if k != "FACELEDGER_MASTER_KEY_FILE"}
    started = subprocess.run([faceledger, "serve", "--port", "0", "--database-url", database_url, "--credentials-file", credentials],
                             capture_output=True, text=True, timeout=120, env=no_key)
    assert started.returncode == 64 and "--master-key-file (or FACELEDGER_MASTER_KEY_FILE) is required" in started.stderr
    garbled = tmp_path / "garbled-key"
    garbled.write_text("not a key\n")
    started = subprocess.run([faceledger, "serve", "--port", "0", "--database-url", database_url, "--credentials-file", credentials,
                              "--master-key-file", str(garbled)], capture_output=True, text=True, timeout=120)
    assert started.returncode == 1 and "is not a base64 256-bit key" in started.stderr


def test_rotating_the_master_key_while_serving_keeps_every_request_working(faceledger, database_url, data_dir, tmp_path):
    # A key file of this test's own: the run's shared one must not change under other tests.
    key_file = tmp_path / "own-master-key"
    key_file.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    credentials = write_credentials(data_dir)
    with_key = ["--master-key-file", str(key_file)]
    with Server(faceledger, "--database-url", database_url, "--credentials-file", credentials, *with_key) as server:
        api = Api(server, database_url)
        c = api.client()
        c.create_collection(CollectionId="c")
        api.import_faces("c", [embedding(dim=16) for _ in range(20)])
        old_id = psql(database_url, "SELECT DISTINCT kek_id FROM face_keys")
        failures, stop = [], threading.Event()

        def load():
            client = api.client()
            while not stop.is_set():
                try:
                    [face] = api.import_faces("c", [embedding(dim=16)])
                    client.search_faces(CollectionId="c", FaceId=face, FaceMatchThreshold=0)
                except Exception as error:  # every request must keep working
                    failures.append(repr(error))

        worker = threading.Thread(target=load)
        worker.start()
        try:
            new_file = tmp_path / "rotated-key"
            made = subprocess.run([faceledger, "rotate-master-key", "--new-key-file", str(new_file), *with_key],
                                  capture_output=True, text=True)
            assert made.returncode == 0, made.stderr
            # The server reads the key file it was given again when it changes: put the new one in its place.
            os.replace(new_file, key_file)
            newest = lambda: psql(database_url, "SELECT kek_id FROM face_keys ORDER BY created_at DESC LIMIT 1")
            deadline = time.monotonic() + 30
            while newest() == old_id:  # the server wraps new imports under the new key once it has read the file
                assert time.monotonic() < deadline, "the server did not take the new key"
                time.sleep(0.05)
            rotated = subprocess.run([faceledger, "rotate-master-key", "--database-url", database_url, *with_key],
                                     capture_output=True, text=True)
            assert rotated.returncode == 0, rotated.stdout + rotated.stderr
            assert "; 0 left under older keys" in rotated.stdout
        finally:
            stop.set()
            worker.join(60)
        assert not failures, failures[:3]
        assert psql(database_url, "SELECT string_agg(DISTINCT kek_id, ',') FROM face_keys") == newest()
        server.stop()
    # The old key can go: a server with the new key alone starts, and folds every embedding.
    with open(key_file) as f:
        only_new_key = next(line for line in f if line.strip() and not line.startswith("#"))
    only_new = tmp_path / "only-new"
    only_new.write_text(only_new_key)
    with Server(faceledger, "--database-url", database_url, "--credentials-file", credentials,
                "--master-key-file", str(only_new)) as again:
        client = Api(again, database_url).client()
        faces = client.list_faces(CollectionId="c", MaxResults=4096)["Faces"]
        hit = client.search_faces(CollectionId="c", FaceId=faces[0]["FaceId"], FaceMatchThreshold=0)
        assert len(faces) > 20 and hit["FaceMatches"]
        again.stop()


def test_a_log_written_before_encryption_is_encrypted_once_and_still_verifies(faceledger, database_url, data_dir):
    credentials = write_credentials(data_dir)
    with Server(faceledger, "--database-url", database_url, "--credentials-file", credentials) as server:
        Api(server, database_url).client().create_collection(CollectionId="c")
        server.stop()
    face = "00000000-0000-0000-0000-00000000abcd"
    # A FaceImported as FaceLedger wrote it before encryption: the embedding in clear beside the payload.
    psql(database_url, f"""SELECT append_events('c', '{{}}', '{{}}', ARRAY['face:{face}'], ARRAY['FaceImported'], ARRAY[1]::int8[],
        ARRAY['{{"faceId": "{face}", "imageId": "i", "confidence": 100}}']::jsonb[], ARRAY['\\x{float_hex(TELLTALE)}'::bytea],
        ARRAY['legacy'], ARRAY['r-legacy'], ARRAY[NULL]::text[], ARRAY['ImportFaces'], ARRAY[NULL]::text[], ARRAY[NULL]::uuid[])""")
    assert "float bytes" in telltales_in(dump(database_url, "events"))

    def run(*args):
        return subprocess.run([faceledger, *args, "--database-url", database_url], capture_output=True, text=True, timeout=120)
    assert run("verify").returncode == 0
    # Before the migration there is no key to destroy: a forget would be a lie, and is refused.
    refused = run("forget", "--collection", "c", "--face-id", face)
    assert refused.returncode == 1 and "recorded before encryption: run `faceledger encrypt-log` first" in refused.stderr
    encrypted = run("encrypt-log")
    assert encrypted.returncode == 0 and "encrypted 1 embeddings" in encrypted.stdout, encrypted.stderr
    assert telltales_in(dump(database_url, "events")) == []
    assert run("verify").returncode == 0  # the chain computed again, over the ciphertext
    assert "nothing changed" in run("encrypt-log").stdout
    # The embedding is there for the ledger (under its key), and forgetting it now destroys it.
    with Server(faceledger, "--database-url", database_url, "--credentials-file", credentials) as server:
        api = Api(server, database_url)
        [probe] = api.import_faces("c", [[v + 0.001 for v in TELLTALE]])
        matches = api.client().search_faces(CollectionId="c", FaceId=probe, FaceMatchThreshold=90)["FaceMatches"]
        assert [m["Face"]["FaceId"] for m in matches] == [face]
        assert api.raw("FaceLedger.ForgetFaces", {"CollectionId": "c", "FaceIds": [face]})[0] == 200
        server.stop()
    assert telltales_in(dump(database_url)) == []


def test_deleting_a_collection_destroys_its_faces_keys(api):
    c = api.client()
    c.create_collection(CollectionId="gone")
    c.create_collection(CollectionId="kept")
    api.import_faces("gone", [embedding(dim=16) for _ in range(3)])
    api.import_faces("kept", [embedding(dim=16)])
    c.delete_collection(CollectionId="gone")
    assert psql(api.database_url, "SELECT collection_id, count(*) FROM face_keys GROUP BY 1") == "kept|1"
