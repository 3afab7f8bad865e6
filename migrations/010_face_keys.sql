-- Crypto-shredding: the data keys of the embeddings in the log.
--
-- Every embedding a FaceImported event carries is encrypted (AES-GCM) under a data key of its own,
-- named by the event (`keyId` in its payload). The data keys live here, never in the log, each wrapped
-- (AES-GCM) under a key-encryption key that is not in the database at all (`serve --master-key-file`,
-- or the embedded default's generated <data-dir>/master-key); `kek_id` names which. Forgetting a face
-- deletes its rows: from then on nobody can read its embedding back from the log — not the API, not a
-- rebuild, not `state --as-of` a time before — while the log, whose hash chain covers the ciphertext,
-- stays whole and verifiable. Rotating the master key re-wraps the rows and leaves the log alone.
CREATE TABLE face_keys (
    key_id        uuid        PRIMARY KEY,
    collection_id text        NOT NULL,
    face_id       text        NOT NULL,
    kek_id        text        NOT NULL,
    wrapped       bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX face_keys_by_face ON face_keys (collection_id, face_id);
CREATE INDEX face_keys_by_kek ON face_keys (kek_id);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'faceledger_service') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON face_keys TO faceledger_service;
    END IF;
END $$;
