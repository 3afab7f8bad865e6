-- Least privilege: `faceledger_service`, the role `serve` can run as.
--
-- The migrations (and `faceledger migrate`, `rebuild`, `verify`) run as the owner of the schema.
-- `serve` needs much less: it appends to the log only through append_events(), reads everything,
-- writes the read models, the idempotency tokens and the projector's checkpoint — and nothing else.
-- In particular it cannot UPDATE, DELETE or TRUNCATE the log, nor ALTER it (disabling the triggers that
-- refuse such changes takes the table's owner). Give a login role its rights with
--     CREATE ROLE faceledger_app LOGIN PASSWORD '…' IN ROLE faceledger_service;
-- The role is NOLOGIN itself and shared by every database of the server (roles are per server); the
-- grants below are per database.

DO $$
BEGIN
    BEGIN
        CREATE ROLE faceledger_service NOLOGIN;
    EXCEPTION
        WHEN duplicate_object THEN NULL;  -- another database of this server (or a concurrent migration) made it
        WHEN insufficient_privilege THEN  -- an owner without CREATEROLE: an administrator can create it later
            RAISE NOTICE 'faceledger_service not created (no CREATEROLE); create it and re-grant as in migration 008';
    END;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'faceledger_service') THEN
        GRANT USAGE ON SCHEMA public TO faceledger_service;
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO faceledger_service;
        GRANT INSERT, UPDATE, DELETE ON command_tokens, rm_collections, rm_users, rm_faces, projector_checkpoints
            TO faceledger_service;
        REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON events FROM faceledger_service;
        GRANT EXECUTE ON FUNCTION append_events(text, text[], int8[], text[], text[], int8[], jsonb[], bytea[], text[],
                                                 text[], text[], text[], text[], uuid[]) TO faceledger_service;
    END IF;
END $$;

-- Appends go through append_events() alone, which runs with its owner's right to insert into the log
-- (SECURITY DEFINER; its search_path pinned so a caller cannot substitute objects of their own).
ALTER FUNCTION append_events(text, text[], int8[], text[], text[], int8[], jsonb[], bytea[], text[], text[], text[],
                             text[], text[], uuid[])
    SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE EXECUTE ON FUNCTION append_events(text, text[], int8[], text[], text[], int8[], jsonb[], bytea[], text[], text[],
                                          text[], text[], text[], uuid[]) FROM PUBLIC;

-- `rebuild` grants the same rights on the fresh read-model tables it swaps in; a later migration
-- that adds a table grants what the service needs on it.
