-- The event log: the only source of truth. Read models are folded from it and can be rebuilt.
--
-- Appends are serialised by one transaction-scoped advisory lock (see EventLog+Append.swift), so
-- positions become visible in position order and a reader tailing "position > checkpoint" never
-- skips an event whose transaction committed late.
CREATE TABLE events (
    position        bigint      GENERATED ALWAYS AS IDENTITY,
    -- The unit of partitioning: no append spans two collections ('' for service-level events).
    collection_id   text        NOT NULL,
    stream          text        NOT NULL,
    version         integer     NOT NULL CHECK (version > 0),
    type            text        NOT NULL,
    schema_version  integer     NOT NULL CHECK (schema_version > 0),
    -- The event's facts, without biometric data.
    data            jsonb       NOT NULL,
    -- Biometric data, opaque to the log, so it can be encrypted under per-face keys and shredded.
    embedding       bytea,
    -- Who, what, when, from where.
    principal       text        NOT NULL,
    request_id      text        NOT NULL,
    client_token    text,
    operation       text        NOT NULL,
    source_address  text,
    command_id      uuid,
    recorded_at     timestamptz NOT NULL,
    PRIMARY KEY (collection_id, position),
    UNIQUE (collection_id, stream, version)
);

-- Tailing readers and rebuilds read in position order.
CREATE UNIQUE INDEX events_position ON events (position);

-- Append-only, enforced by the database itself, whoever connects.
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % refused', TG_OP;
END;
$$;

CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- A wake-up hint for tailing readers, delivered when the appending transaction commits.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('faceledger_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify_after_append AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
