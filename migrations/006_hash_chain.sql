-- Tamper evidence: every event carries `hash`, a SHA-256 that chains it to the event before it.
--
--   hash(e) = sha256( field(hash of the previous event; NULL for the first event)
--                  || field(int8send(position))       || field(utf8(collection_id)) || field(utf8(stream))
--                  || field(int4send(version))        || field(utf8(type))          || field(int4send(schema_version))
--                  || field(utf8(data::text))         || field(embedding)           || field(utf8(principal))
--                  || field(utf8(request_id))         || field(utf8(client_token))  || field(utf8(operation))
--                  || field(utf8(source_address))     || field(uuid_send(command_id))
--                  || field(timestamptz_send(recorded_at)) )
--
--   field(NULL) = ff ff ff ff                      (length -1, no bytes: NULL differs from empty)
--   field(b)    = int4send(length(b)) || b         (4-byte big-endian length, then the bytes)
--
-- Every value is in PostgreSQL's binary wire format (what a binary-mode client receives, with
-- client_encoding UTF8): integers big-endian, uuid its 16 bytes, timestamptz the microseconds since
-- 2000-01-01 UTC as int8, jsonb its canonical text (jsonb::text). Because every field carries its
-- length, no two different rows encode alike. `faceledger verify` (Sources/EventLog/HashChain.swift)
-- implements the same encoding from the raw column bytes and recomputes the chain from position 1:
-- a change to any column, a removed, inserted or reordered event breaks it at the first bad position,
-- even when done by a superuser with the append-only triggers disabled.
--
-- The append lock of append_events() makes appends serial, so "the previous event" is well defined:
-- append_events() reads the last hash under the lock and computes the batch's hashes in its
-- INSERT … SELECT, as a running window aggregate over the batch in order (one pass, no extra
-- statement round trip).

ALTER TABLE events ADD COLUMN hash bytea;

-- One field of the encoding above.
CREATE FUNCTION event_hash_field(value bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN coalesce(int4send(length(value)) || value, '\xffffffff'::bytea);

-- An event's own columns, encoded (everything after the previous hash). STABLE, not IMMUTABLE, because
-- convert_to() is STABLE: so declared, the planner inlines it into the calling query (no per-row call).
CREATE FUNCTION event_hash_fields(
    f_position bigint, f_collection_id text, f_stream text, f_version integer, f_type text, f_schema_version integer,
    f_data jsonb, f_embedding bytea, f_principal text, f_request_id text, f_client_token text, f_operation text,
    f_source_address text, f_command_id uuid, f_recorded_at timestamptz
) RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
    RETURN event_hash_field(int8send(f_position))
        || event_hash_field(convert_to(f_collection_id, 'UTF8'))
        || event_hash_field(convert_to(f_stream, 'UTF8'))
        || event_hash_field(int4send(f_version))
        || event_hash_field(convert_to(f_type, 'UTF8'))
        || event_hash_field(int4send(f_schema_version))
        || event_hash_field(convert_to(f_data::text, 'UTF8'))
        || event_hash_field(f_embedding)
        || event_hash_field(convert_to(f_principal, 'UTF8'))
        || event_hash_field(convert_to(f_request_id, 'UTF8'))
        || event_hash_field(convert_to(f_client_token, 'UTF8'))
        || event_hash_field(convert_to(f_operation, 'UTF8'))
        || event_hash_field(convert_to(f_source_address, 'UTF8'))
        || event_hash_field(uuid_send(f_command_id))
        || event_hash_field(timestamptz_send(f_recorded_at));

-- One link of the chain. As the transition function of event_chain() below, `state` is the hash of
-- the row before in the window (NULL at the window's first row, which links to `previous`: the last
-- hash already in the log, NULL when the log is empty). Not strict: NULLs are meaningful here.
CREATE FUNCTION event_chain_step(state bytea, previous bytea, fields bytea) RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN sha256(event_hash_field(coalesce(state, previous)) || fields);
END;
$$;

-- event_chain(previous, fields) OVER (ORDER BY position ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
-- is each row's hash. A window whose frame starts at the first row is aggregated incrementally, so a
-- batch of n events costs n hashes.
CREATE AGGREGATE event_chain(bytea, bytea) (SFUNC = event_chain_step, STYPE = bytea);

-- The existing log gets its hashes once, in position order. The append-only trigger is disabled only
-- inside this migration's transaction: ALTER TABLE holds an exclusive lock on `events` until commit,
-- so nobody else can change (or even read) the table while it is off, and it is back on at commit.
ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete;
UPDATE events AS e SET hash = chained.hash
FROM (SELECT x.position,
             event_chain(NULL::bytea, event_hash_fields(
                 x.position, x.collection_id, x.stream, x.version, x.type, x.schema_version, x.data, x.embedding,
                 x.principal, x.request_id, x.client_token, x.operation, x.source_address, x.command_id,
                 x.recorded_at)) OVER (ORDER BY x.position ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS hash
      FROM events AS x) AS chained
WHERE e.position = chained.position;
ALTER TABLE events ENABLE TRIGGER events_no_update_or_delete;
ALTER TABLE events ALTER COLUMN hash SET NOT NULL;

-- As in 001, plus the hash. Positions are drawn up front (under the lock, so they increase along the
-- batch) because each event's hash covers its position.
CREATE OR REPLACE FUNCTION append_events(
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
    last_recorded_at timestamptz;
    previous_hash bytea;
    positions int8[];
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

    SELECT e.recorded_at, e.hash INTO last_recorded_at, previous_hash FROM events e ORDER BY e.position DESC LIMIT 1;
    appended_at := greatest(clock_timestamp(), last_recorded_at);
    positions := ARRAY(SELECT nextval(pg_get_serial_sequence('events', 'position'))
                       FROM generate_series(1, cardinality(p_streams)));

    RETURN QUERY
    INSERT INTO events (position, collection_id, stream, version, type, schema_version, data, embedding,
                        principal, request_id, client_token, operation, source_address, command_id, recorded_at, hash)
    OVERRIDING SYSTEM VALUE
    SELECT v.position, p_collection_id, v.stream, v.version, v.type, v.schema_version, v.data, v.embedding,
           v.principal, v.request_id, v.client_token, v.operation, v.source_address, v.command_id, appended_at,
           event_chain(previous_hash, event_hash_fields(
               v.position, p_collection_id, v.stream, v.version, v.type, v.schema_version, v.data, v.embedding,
               v.principal, v.request_id, v.client_token, v.operation, v.source_address, v.command_id, appended_at))
               OVER (ORDER BY v.ordinal ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    FROM (SELECT n.position, n.stream, n.type, n.schema_version::integer AS schema_version, n.data, n.embedding,
                 n.principal, n.request_id, n.client_token, n.operation, n.source_address, n.command_id, n.ordinal,
                 (coalesce((SELECT max(e.version) FROM events e
                            WHERE e.collection_id = p_collection_id AND e.stream = n.stream), 0)
                     + row_number() OVER (PARTITION BY n.stream ORDER BY n.ordinal))::integer AS version
          FROM unnest(positions, p_streams, p_types, p_schema_versions, p_data, p_embeddings, p_principals,
                      p_request_ids, p_client_tokens, p_operations, p_source_addresses, p_command_ids)
                   WITH ORDINALITY AS n(position, stream, type, schema_version, data, embedding, principal,
                                        request_id, client_token, operation, source_address, command_id, ordinal)
         ) AS v
    ORDER BY v.ordinal
    RETURNING *;
END;
$$;
