"""Tamper evidence: `faceledger verify` walks the hash chain, `faceledger digest` signs the head.

Every tamper is done as a database superuser with the append-only triggers disabled, as an insider
with full access to PostgreSQL would: the triggers stop mistakes, the chain is what catches intent."""
import json
import os
import subprocess

import pytest

from conftest import psql


def run(faceledger, *args, env=None):
    return subprocess.run([faceledger, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def verify(faceledger, database_url, *args):
    """Runs `verify --json`; returns (exit status, parsed report)."""
    result = run(faceledger, "verify", "--database-url", database_url, "--json", *args)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def tamper(database_url, sql):
    psql(database_url, f"ALTER TABLE events DISABLE TRIGGER ALL; {sql}; ALTER TABLE events ENABLE TRIGGER ALL")


def write_some_events(api, collection="c"):
    """Real traffic through `serve`: a collection, users, faces, associations."""
    c = api.client()
    c.create_collection(CollectionId=collection)
    for user in ("u1", "u2", "u3"):
        c.create_user(CollectionId=collection, UserId=user)
    faces = api.import_faces(collection, [[1, i / 10, 0.5] for i in range(6)])
    c.associate_faces(CollectionId=collection, UserId="u1", FaceIds=faces[:2])
    c.associate_faces(CollectionId=collection, UserId="u2", FaceIds=faces[2:4])
    c.disassociate_faces(CollectionId=collection, UserId="u1", FaceIds=faces[:1])
    return int(psql(api.database_url, "SELECT count(*) FROM events"))


def middle(database_url, where="true"):
    """A position in the middle of the log (so events before and after it exist)."""
    return int(psql(database_url, f"""SELECT position FROM events WHERE {where}
                                      AND position > (SELECT max(position) / 3 FROM events) ORDER BY position LIMIT 1"""))


def test_an_untouched_log_verifies(faceledger, api):
    count = write_some_events(api)
    status, report = verify(faceledger, api.database_url)
    assert status == 0, report
    assert report["intact"] is True and report["first_bad_position"] is None
    assert report["events"] == count and report["head"] == int(psql(api.database_url, "SELECT max(position) FROM events"))
    assert report["head_hash"] == psql(api.database_url, "SELECT encode(hash, 'hex') FROM events ORDER BY position DESC LIMIT 1")
    assert report["events_per_second"] > 0

    human = run(faceledger, "verify", env={"FACELEDGER_DATABASE_URL": api.database_url})
    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith(f"intact: {count} events") and "events/s" in human.stdout


def _alter_data(url):
    p = middle(url, "type = 'FaceAssociated'")
    tamper(url, f"""UPDATE events SET data = jsonb_set(data, '{{userId}}', '"u3"') WHERE position = {p}""")
    return p


def _alter_principal(url):
    p = middle(url)
    tamper(url, f"UPDATE events SET principal = 'mallory' WHERE position = {p}")
    return p


def _alter_embedding(url):
    p = int(psql(url, "SELECT position FROM events WHERE embedding IS NOT NULL ORDER BY position DESC LIMIT 1"))
    tamper(url, f"UPDATE events SET embedding = set_byte(embedding, 0, get_byte(embedding, 0) # 1) WHERE position = {p}")
    return p


def _alter_time(url):
    p = middle(url)
    tamper(url, f"UPDATE events SET recorded_at = recorded_at - interval '1 hour' WHERE position = {p}")
    return p


def _delete(url):
    p = middle(url)
    tamper(url, f"DELETE FROM events WHERE position = {p}")
    return p + 1  # the event after the gap no longer follows its predecessor


def _swap_data(url):
    a, b = psql(url, """SELECT a.position, b.position FROM events a JOIN events b
                        ON b.position > a.position AND b.data <> a.data AND b.collection_id = a.collection_id
                        WHERE a.position > (SELECT max(position) / 3 FROM events)
                        ORDER BY a.position, b.position LIMIT 1""").split("|")
    tamper(url, f"""UPDATE events AS e SET data = o.data FROM events AS o
                    WHERE (e.position, o.position) IN (({a}, {b}), ({b}, {a}))""")
    return int(a)


def _rehash_one(url):
    """A careful forger alters an event and recomputes its own hash with the log's functions: the next
    event still names the old hash as its predecessor."""
    p = middle(url)
    tamper(url, f"""UPDATE events AS e SET principal = 'mallory',
                        hash = sha256(event_hash_field((SELECT x.hash FROM events x WHERE x.position < e.position
                                                        ORDER BY x.position DESC LIMIT 1))
                                      || event_hash_fields(e.position, e.collection_id, e.stream, e.version, e.type,
                                             e.schema_version, e.data, e.embedding, 'mallory', e.request_id,
                                             e.client_token, e.operation, e.source_address, e.command_id, e.recorded_at))
                    WHERE position = {p}""")
    return p + 1


@pytest.mark.parametrize("tampering", [_alter_data, _alter_principal, _alter_embedding, _alter_time, _delete, _swap_data,
                                       _rehash_one], ids=lambda f: f.__name__.strip("_"))
def test_verify_names_the_first_bad_position(faceledger, api, tampering):
    write_some_events(api)
    assert verify(faceledger, api.database_url)[0] == 0
    bad = tampering(api.database_url)

    status, report = verify(faceledger, api.database_url)
    assert status == 2, report
    assert report["intact"] is False and report["first_bad_position"] == bad
    assert report["head"] < bad  # every event before it checked out

    human = run(faceledger, "verify", "--database-url", api.database_url)
    assert human.returncode == 2
    assert f"verification FAILED at position {bad}:" in human.stderr


def rechain(url):
    """The forger's last resort: recompute every hash from position 1, so the chain itself is intact."""
    tamper(url, """UPDATE events AS e SET hash = c.hash FROM (
                       SELECT position, event_chain(NULL::bytea, event_hash_fields(position, collection_id, stream, version,
                           type, schema_version, data, embedding, principal, request_id, client_token, operation,
                           source_address, command_id, recorded_at)) OVER (ORDER BY position) AS hash FROM events) AS c
                   WHERE e.position = c.position""")


def test_a_digest_still_verifies_after_appends_and_fails_after_a_tamper_before_it(faceledger, api, data_dir, tmp_path):
    write_some_events(api)
    made = run(faceledger, "digest", "--database-url", api.database_url, "--data-dir", data_dir)
    assert made.returncode == 0, made.stderr
    key_file = os.path.join(data_dir, "digest-key")
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    digest = json.loads(made.stdout)
    assert set(digest) == {"position", "hash", "time", "public_key", "signature"}
    assert digest["position"] == int(psql(api.database_url, "SELECT max(position) FROM events"))
    saved = tmp_path / "digest.json"
    saved.write_text(made.stdout)

    # The same key signs the next digest (it is kept, not re-created); FACELEDGER_KEY_FILE names it too.
    again = run(faceledger, "digest", "--database-url", api.database_url, env={"FACELEDGER_KEY_FILE": key_file})
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["public_key"] == digest["public_key"]

    write_some_events(api, collection="later")
    status, report = verify(faceledger, api.database_url, "--digest", str(saved))
    assert status == 0, report
    assert report["head"] > digest["position"] and report["digest"]["position"] == digest["position"]
    human = run(faceledger, "verify", "--database-url", api.database_url, env={"FACELEDGER_DIGEST": str(saved)})
    assert human.returncode == 0, human.stderr
    assert f"the log extends the digest of position {digest['position']}" in human.stdout

    # With the key the auditor trusts, the digest verifies; a digest made with another key does not,
    # however valid its own signature.
    assert verify(faceledger, api.database_url, "--digest", str(saved), "--public-key", digest["public_key"])[0] == 0
    other_key = tmp_path / "other-key"
    other = run(faceledger, "digest", "--database-url", api.database_url, "--key-file", str(other_key))
    assert other.returncode == 0, other.stderr
    other_digest = tmp_path / "other.json"
    other_digest.write_text(other.stdout)
    assert verify(faceledger, api.database_url, "--digest", str(other_digest))[0] == 0  # valid on its own terms
    status, report = verify(faceledger, api.database_url, "--digest", str(other_digest), "--public-key", digest["public_key"])
    assert status == 2 and "another key" in report["reason"]

    # A forged digest (another hash under the same signature) is refused.
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**digest, "hash": "00" * 32}))
    status, report = verify(faceledger, api.database_url, "--digest", str(forged))
    assert status == 2 and "signature" in report["reason"]

    # Tamper before the digest's position, then recompute the whole chain: the chain alone looks intact,
    # the digest does not.
    bad = middle(api.database_url)
    assert bad < digest["position"]
    tamper(api.database_url, f"UPDATE events SET principal = 'mallory' WHERE position = {bad}")
    assert verify(faceledger, api.database_url, "--digest", str(saved))[1]["first_bad_position"] == bad
    rechain(api.database_url)
    assert verify(faceledger, api.database_url)[0] == 0
    status, report = verify(faceledger, api.database_url, "--digest", str(saved))
    assert status == 2 and report["first_bad_position"] == digest["position"]
    assert "differs from the digest" in report["reason"]


def test_a_digest_catches_the_removal_of_the_last_events(faceledger, api, data_dir, tmp_path):
    write_some_events(api)
    saved = tmp_path / "digest.json"
    made = run(faceledger, "digest", "--database-url", api.database_url, "--key-file", os.path.join(data_dir, "k"))
    assert made.returncode == 0, made.stderr
    saved.write_text(made.stdout)
    position = json.loads(made.stdout)["position"]

    tamper(api.database_url, f"DELETE FROM events WHERE position >= {position - 2}")
    assert verify(faceledger, api.database_url)[0] == 0  # a shorter chain is still a chain
    status, report = verify(faceledger, api.database_url, "--digest", str(saved))
    assert status == 2 and report["first_bad_position"] == position and "gone" in report["reason"]


def test_digest_of_an_empty_log_and_an_unreadable_digest_are_runtime_errors(faceledger, database_url, data_dir, tmp_path):
    assert run(faceledger, "migrate", "--database-url", database_url).returncode == 0
    empty = run(faceledger, "digest", "--database-url", database_url, "--data-dir", data_dir)
    assert empty.returncode == 1 and "empty" in empty.stderr
    assert run(faceledger, "verify", "--database-url", database_url).returncode == 0  # nothing to break
    junk = tmp_path / "junk.json"
    junk.write_text("not json")
    result = run(faceledger, "verify", "--database-url", database_url, "--digest", str(junk))
    assert result.returncode == 1 and "is not a digest" in result.stderr
