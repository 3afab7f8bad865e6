-- A log of one collection 'bench' holding :faces imported faces with :dim-number embeddings (one
-- FaceImported event each, in clear as a log from before encryption), appended through
-- append_events() so it is hash-chained like a real one.
-- Usage: psql URL -v faces=200000 -v dim=128 -f scripts/faces-log.sql
\set ON_ERROR_STOP on
CREATE FUNCTION pg_temp.face(n bigint) RETURNS text LANGUAGE sql AS $$
    SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' || substr(h, 17, 4) || '-' || substr(h, 21, 12)
    FROM (SELECT lpad(to_hex(n), 32, '0') AS h) AS x
$$;
SELECT count(*) FROM append_events('bench', '{}', '{}', '{collection}', '{CollectionCreated}', '{1}',
    ARRAY['{"collectionId": "bench", "arn": "arn:aws:rekognition:us-east-1:000000000000:collection/bench"}'::jsonb],
    '{NULL}', '{bench}', '{r-0}', '{NULL}', '{CreateCollection}', '{NULL}', '{NULL}');
SELECT set_config('bench.faces', :'faces', false), set_config('bench.dim', :'dim', false);
-- 50,000 faces per append_events() call; each embedding is 1.0 everywhere but its last number.
DO $$
DECLARE
    total int := current_setting('bench.faces')::int;
    dim int := current_setting('bench.dim')::int;
    lo int := 1;
BEGIN
    WHILE lo <= total LOOP
        PERFORM count(*) FROM append_events('bench', '{}', '{}',
            ARRAY(SELECT 'face:' || pg_temp.face(n) FROM generate_series(lo, least(lo + 49999, total)) n),
            ARRAY(SELECT 'FaceImported' FROM generate_series(lo, least(lo + 49999, total)) n),
            ARRAY(SELECT 1::int8 FROM generate_series(lo, least(lo + 49999, total)) n),
            ARRAY(SELECT jsonb_build_object('faceId', pg_temp.face(n), 'imageId', pg_temp.face(n + 1000000000), 'confidence', 100)
                  FROM generate_series(lo, least(lo + 49999, total)) n),
            ARRAY(SELECT decode(repeat('0000803f', dim - 1) || lpad(to_hex(n % 256), 2, '0') || '00803f', 'hex')
                  FROM generate_series(lo, least(lo + 49999, total)) n),
            ARRAY(SELECT 'bench'::text FROM generate_series(lo, least(lo + 49999, total)) n),
            ARRAY(SELECT 'r-' || n FROM generate_series(lo, least(lo + 49999, total)) n),
            ARRAY(SELECT NULL::text FROM generate_series(lo, least(lo + 49999, total)) n),
            ARRAY(SELECT 'ImportFaces' FROM generate_series(lo, least(lo + 49999, total)) n),
            ARRAY(SELECT NULL::text FROM generate_series(lo, least(lo + 49999, total)) n),
            ARRAY(SELECT NULL::uuid FROM generate_series(lo, least(lo + 49999, total)) n));
        lo := lo + 50000;
    END LOOP;
END $$;
