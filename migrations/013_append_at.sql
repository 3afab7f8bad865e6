-- append_events_at(): an append whose positions and time the caller chose under the append lock, so that
-- the caller can send it together with the writes that follow from it and its COMMIT, in one round trip.
--
-- append_events() draws positions and the time itself and returns them; a command batch needs both
-- before it can write its write-model rows, token bindings and pending commands, which cost it a round
-- trip of its own per transaction. A batch takes the append lock first and reads the log's head
-- under it (WriteModel.locking), so it knows what append_events() would have drawn: positions from the
-- head's + 1 on, and the later of the clock and the head's time. Because the lock is held from that
-- read to the commit, nothing can append in between, and the positions stay in commit order: what
-- makes a tailing reader safe (migration 001) holds as before.
--
-- The function checks what the caller chose instead of trusting it: the first position past the log's
-- last, the time no earlier than the last event's (FL417 otherwise: the caller read without the lock,
-- or something appended in between). Positions left unused by the sequence (drawn by transactions that
-- rolled back) may be taken; none was ever committed, so no reader can have passed them.
CREATE FUNCTION append_events_at(
    p_collection_id     text,
    p_first_position    int8,
    p_recorded_at       timestamptz,
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
) RETURNS void LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    last_position int8;
    last_recorded_at timestamptz;
    previous_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(5071443942120449127);  -- "FaceLedg", as append_events()

    SELECT e.position, e.recorded_at, e.hash INTO last_position, last_recorded_at, previous_hash
    FROM events e ORDER BY e.position DESC LIMIT 1;
    IF p_first_position <= coalesce(last_position, 0) OR p_recorded_at < last_recorded_at THEN
        RAISE EXCEPTION 'the log moved past the position or time chosen for this append'
            USING ERRCODE = 'FL417',
                  DETAIL = json_build_object('first_position', p_first_position, 'last_position', last_position)::text;
    END IF;
    IF cardinality(p_streams) = 0 THEN
        RETURN;
    END IF;
    -- The identity column's sequence follows the log, for whoever inserts without choosing positions.
    -- Under the lock nobody else holds positions not yet committed, so this may also move it back over
    -- positions of transactions that rolled back: they are free again.
    PERFORM setval(pg_get_serial_sequence('events', 'position'), p_first_position + cardinality(p_streams) - 1);

    INSERT INTO events (position, collection_id, stream, version, type, schema_version, data, embedding,
                        principal, request_id, client_token, operation, source_address, command_id, recorded_at, hash)
    OVERRIDING SYSTEM VALUE
    SELECT v.position, p_collection_id, v.stream, v.version, v.type, v.schema_version, v.data, v.embedding,
           v.principal, v.request_id, v.client_token, v.operation, v.source_address, v.command_id, p_recorded_at,
           event_chain(previous_hash, event_hash_fields(
               v.position, p_collection_id, v.stream, v.version, v.type, v.schema_version, v.data, v.embedding,
               v.principal, v.request_id, v.client_token, v.operation, v.source_address, v.command_id, p_recorded_at))
               OVER (ORDER BY v.ordinal ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    FROM (SELECT p_first_position + n.ordinal - 1 AS position, n.stream, n.type,
                 n.schema_version::integer AS schema_version, n.data, n.embedding,
                 n.principal, n.request_id, n.client_token, n.operation, n.source_address, n.command_id, n.ordinal,
                 (coalesce((SELECT max(e.version) FROM events e
                            WHERE e.collection_id = p_collection_id AND e.stream = n.stream), 0)
                     + row_number() OVER (PARTITION BY n.stream ORDER BY n.ordinal))::integer AS version
          FROM unnest(p_streams, p_types, p_schema_versions, p_data, p_embeddings, p_principals,
                      p_request_ids, p_client_tokens, p_operations, p_source_addresses, p_command_ids)
                   WITH ORDINALITY AS n(stream, type, schema_version, data, embedding, principal,
                                        request_id, client_token, operation, source_address, command_id, ordinal)
         ) AS v
    ORDER BY v.ordinal;
END;
$$;

REVOKE EXECUTE ON FUNCTION append_events_at(text, int8, timestamptz, text[], text[], int8[], jsonb[], bytea[], text[],
                                             text[], text[], text[], text[], uuid[]) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'faceledger_service') THEN
        GRANT EXECUTE ON FUNCTION append_events_at(text, int8, timestamptz, text[], text[], int8[], jsonb[], bytea[],
                                                    text[], text[], text[], text[], text[], uuid[])
            TO faceledger_service;
    END IF;
END $$;

-- append_events() keeps its signature, checks and answer, and appends through append_events_at(), so
-- that the INSERT and its hash chain are written once. Its positions now follow the log's last one as
-- append_events_at()'s do, rather than coming from nextval(): under the lock either is the next in
-- commit order. CREATE OR REPLACE keeps its grants; its settings are restated, since it replaces them.
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
) RETURNS SETOF events LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    conflict record;
    first_position int8;
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

    SELECT coalesce(max(e.position), 0) + 1 INTO first_position FROM events e;
    SELECT greatest(clock_timestamp(), (SELECT e.recorded_at FROM events e ORDER BY e.position DESC LIMIT 1))
    INTO appended_at;
    PERFORM append_events_at(p_collection_id, first_position, appended_at, p_streams, p_types, p_schema_versions,
                             p_data, p_embeddings, p_principals, p_request_ids, p_client_tokens, p_operations,
                             p_source_addresses, p_command_ids);
    RETURN QUERY
    SELECT * FROM events e
    WHERE e.position >= first_position AND e.position < first_position + cardinality(p_streams)
    ORDER BY e.position;
END;
$$;
