-- A log of about a million events in collection 'bench', appended through append_events() (so every
-- event is hash-chained like a real one): 10,000 users, 500,000 imported faces (8-number embeddings)
-- and :per_user associations per user (49: 490,000, for 1,000,001 events in all).
-- Usage: psql URL -v per_user=49 -f scripts/million-events.sql
\set ON_ERROR_STOP on
CREATE FUNCTION pg_temp.face(n bigint) RETURNS text LANGUAGE sql AS $$
    SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' || substr(h, 17, 4) || '-' || substr(h, 21, 12)
    FROM (SELECT lpad(to_hex(n), 32, '0') AS h) AS x
$$;
-- Appends rows (stream, type, data, embedding, operation) in chunks of 50,000, each one append_events() call.
CREATE FUNCTION pg_temp.append(rows_sql text, total int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lo int := 1;
BEGIN
    WHILE lo <= total LOOP
        EXECUTE format($f$
            WITH r AS (SELECT * FROM (%s) AS q WHERE n BETWEEN %s AND %s ORDER BY n)
            SELECT count(*) FROM append_events('bench', '{}', '{}',
                ARRAY(SELECT stream FROM r), ARRAY(SELECT type FROM r), ARRAY(SELECT 1::int8 FROM r),
                ARRAY(SELECT data FROM r), ARRAY(SELECT embedding FROM r), ARRAY(SELECT 'bench'::text FROM r),
                ARRAY(SELECT 'r-' || n FROM r), ARRAY(SELECT NULL::text FROM r), ARRAY(SELECT operation FROM r),
                ARRAY(SELECT NULL::text FROM r), ARRAY(SELECT NULL::uuid FROM r))
            $f$, rows_sql, lo, least(lo + 49999, total));
        lo := lo + 50000;
    END LOOP;
END $$;
SELECT pg_temp.append($$SELECT 1 AS n, 'collection' AS stream, 'CollectionCreated' AS type,
    '{"collectionId": "bench", "arn": "arn:aws:rekognition:us-east-1:000000000000:collection/bench"}'::jsonb AS data,
    NULL::bytea AS embedding, 'CreateCollection' AS operation$$, 1);
SELECT pg_temp.append($$SELECT n, 'user:u' || n AS stream, 'UserCreated' AS type, jsonb_build_object('userId', 'u' || n) AS data,
    NULL::bytea AS embedding, 'CreateUser' AS operation FROM generate_series(1, 10000) AS n$$, 10000);
SELECT pg_temp.append($$SELECT n, 'face:' || pg_temp.face(n) AS stream, 'FaceImported' AS type,
    jsonb_build_object('faceId', pg_temp.face(n), 'imageId', pg_temp.face(n + 1000000000), 'confidence', 100) AS data,
    decode(repeat('0000803f', 7) || lpad(to_hex(n % 256), 2, '0') || '00803f', 'hex') AS embedding, 'ImportFaces' AS operation
    FROM generate_series(1, 500000) AS n$$, 500000);
SELECT pg_temp.append(format($$SELECT n, 'face:' || pg_temp.face(n) AS stream, 'FaceAssociated' AS type,
    jsonb_build_object('faceId', pg_temp.face(n), 'userId', 'u' || (1 + (n - 1) / %s)) AS data,
    NULL::bytea AS embedding, 'AssociateFaces' AS operation FROM generate_series(1, %s) AS n$$, :per_user, 10000 * :per_user),
    10000 * :per_user);
