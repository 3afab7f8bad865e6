-- The write model: what the command side decides against, kept in tables written in the same
-- transaction as the events they fold.
--
-- Until now the command processor (and the projector too) folded the whole log into memory when it
-- started: start-up time and memory grew with the log. Now a batch loads only the rows its commands
-- name (the collection, the named users with their faces, the named faces and their owners), decides,
-- appends, and folds its own events into these rows before it commits. Start-up reads nothing but
-- `write_model.position`, and memory is bounded by the batch.
--
-- The tables have the shape of the read models (one code path writes both), plus what deciding needs
-- and the read models did not keep: a collection's embedding dimension; a user's vector sum
-- (Σ normalize(embedding) over its faces, float64 little-endian), kept as faces are associated so that
-- deciding an association never reads the user's faces; and the position of a face's association,
-- which orders a user's faces. `write_model.position` is the last event folded; a log
-- written before this migration (or by anything that does not fold) is caught up from there, in pages,
-- under the append lock.
ALTER TABLE rm_collections ADD COLUMN dimension integer;
ALTER TABLE rm_users ADD COLUMN vector_sum bytea;
ALTER TABLE rm_faces ADD COLUMN associated_position bigint;

-- The read models are disposable: they are refolded from position 0, so the new columns are filled
-- for every row (the projector now resumes from its rows instead of refolding the log, and needs them).
TRUNCATE rm_collections, rm_users, rm_faces;
UPDATE projector_checkpoints SET position = 0;

CREATE TABLE wm_collections (LIKE rm_collections INCLUDING ALL);
CREATE TABLE wm_users (LIKE rm_users INCLUDING ALL);
CREATE TABLE wm_faces (LIKE rm_faces INCLUDING ALL);

CREATE TABLE write_model (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    position bigint  NOT NULL
);
INSERT INTO write_model (position) VALUES (0);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'faceledger_service') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON wm_collections, wm_users, wm_faces, write_model TO faceledger_service;
    END IF;
END $$;
