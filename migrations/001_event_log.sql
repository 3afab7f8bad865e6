-- The event log: the only source of truth. Read models are folded from it and can be rebuilt.
-- Events are appended only through append_events() below.
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

-- Appends a batch of events to streams of one collection, atomically and in order.
--
-- Appends are serialised by one transaction-scoped advisory lock, taken before positions are drawn
-- and held until commit. Identity values are drawn in the order appends start but become visible in
-- the order they commit; with the lock the two orders are the same (PostgreSQL makes a commit visible
-- before it releases the transaction's locks), so a reader tailing "position > checkpoint" never skips
-- an event that commits late. The same total order is what the hash chain and "state as of" need.
--
-- expected_streams / expected_versions: per stream, the version it must be at (0: no events yet).
-- A mismatch raises SQLSTATE FL409 with DETAIL {"stream": ..., "actual": ...} and appends nothing.
-- recorded_at is the database clock, but never earlier than the previous event's.
CREATE FUNCTION append_events(
    p_collection_id     text,
    p_expected_streams  text[],
    p_expected_versions int8[],
    p_streams           text[],
    p_types             text[],
    p_schema_versions   int8[],
    p_data              jsonb[],
    p_embeddings        bytea[],
    p_principals        text[],
    p_request_ids       text[],
    p_client_tokens     text[],
    p_operations        text[],
    p_source_addresses  text[],
    p_command_ids       uuid[]
) RETURNS SETOF events LANGUAGE plpgsql AS $$
DECLARE
    conflict record;
    appended_at timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(5071443942120449127);  -- "FaceLedg"

    SELECT x.stream, x.actual INTO conflict
    FROM (SELECT s.stream, s.expected,
                 coalesce((SELECT max(e.version) FROM events e
                           WHERE e.collection_id = p_collection_id AND e.stream = s.stream), 0) AS actual
          FROM unnest(p_expected_streams, p_expected_versions) AS s(stream, expected)) AS x
    WHERE x.actual <> x.expected
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'wrong expected version'
            USING ERRCODE = 'FL409',
                  DETAIL = json_build_object('stream', conflict.stream, 'actual', conflict.actual)::text;
    END IF;

    appended_at := greatest(clock_timestamp(), (SELECT e.recorded_at FROM events e ORDER BY e.position DESC LIMIT 1));
    RETURN QUERY
    INSERT INTO events (collection_id, stream, version, type, schema_version, data, embedding,
                        principal, request_id, client_token, operation, source_address, command_id, recorded_at)
    SELECT p_collection_id, n.stream,
           coalesce((SELECT max(e.version) FROM events e
                     WHERE e.collection_id = p_collection_id AND e.stream = n.stream), 0)
               + row_number() OVER (PARTITION BY n.stream ORDER BY n.ordinal),
           n.type, n.schema_version, n.data, n.embedding,
           n.principal, n.request_id, n.client_token, n.operation, n.source_address, n.command_id, appended_at
    FROM unnest(p_streams, p_types, p_schema_versions, p_data, p_embeddings, p_principals, p_request_ids,
                p_client_tokens, p_operations, p_source_addresses, p_command_ids)
             WITH ORDINALITY AS n(stream, type, schema_version, data, embedding, principal, request_id,
                                  client_token, operation, source_address, command_id, ordinal)
    ORDER BY n.ordinal
    RETURNING *;
END;
$$;
