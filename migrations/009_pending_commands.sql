-- Upstream mode: commands accepted in the log and not yet settled by the upstream.
--
-- A command is inserted here in the transaction that appends its CommandAccepted event, and deleted in
-- the one that appends its settlement (or its abandonment): the table is exactly the unsettled commands.
-- It holds what a replay needs — the exact body sent upstream, with its ClientRequestToken — which the
-- log does not (the log records requests without images or embeddings); the body goes with the row.
--
-- Whoever calls the upstream for a command first takes its lease (lease_owner, lease_until), so two
-- instances, or an instance and the reconciler, never work on one command at once; a killed process's
-- lease runs out and the reconciler takes over. `keys` names what the command touches: a command does
-- not go upstream while an earlier pending one of its collection shares a key (or either is a
-- collection-wide command, key 'collection'), so the upstream executes them in the order accepted.
CREATE TABLE pending_commands (
    command_id        uuid        PRIMARY KEY,
    collection_id     text        NOT NULL,
    operation         text        NOT NULL,
    upstream_token    text        NOT NULL,
    request_hash      text        NOT NULL,
    recorded_request  jsonb       NOT NULL,
    body              bytea       NOT NULL,
    keys              text[]      NOT NULL,
    accepted_position bigint      NOT NULL,
    accepted_at       timestamptz NOT NULL,
    -- The command's metadata, carried onto the events of its settlement.
    principal         text        NOT NULL,
    request_id        text        NOT NULL,
    client_token      text,
    source_address    text,
    attempts          int         NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL,
    lease_owner       uuid,
    lease_until       timestamptz,
    UNIQUE (upstream_token, operation)
);
CREATE INDEX pending_commands_by_collection ON pending_commands (collection_id, accepted_position);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'faceledger_service') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON pending_commands TO faceledger_service;
    END IF;
END $$;
