-- append_events() plans its statements once per session instead of at every call.
--
-- PL/pgSQL keeps a plan for each statement of a function, but a statement that uses the function's
-- arguments is planned again for each call's values for as long as such custom plans look cheaper
-- than one generic plan, and here they always do. Planning the INSERT inlines event_hash_fields() and
-- event_hash_field(), whose bodies are read back from the catalog and decompressed each time: that
-- was more than half of what an append cost (a three-event append in its transaction: 0.91 ms, 0.52 ms
-- with one plan per session; BENCHMARKS.md).
--
-- The generic plans are the custom ones: every lookup goes by the key (collection_id, stream, version)
-- or by position, whatever the arguments, and a plan made on an empty log keeps using those indexes
-- as it grows (tested in EventLogTests).
ALTER FUNCTION append_events(text, text[], int8[], text[], text[], int8[], jsonb[], bytea[], text[], text[], text[],
                             text[], text[], uuid[])
    SET plan_cache_mode = force_generic_plan;
