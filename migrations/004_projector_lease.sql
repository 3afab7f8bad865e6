-- Projector ownership as a lease in the checkpoint row, checked in the transaction of every batch.
--
-- Until now the active projector was whoever held a session advisory lock. A session lock lives
-- and dies with one backend: when the projector's connection was re-established (PQreset after the
-- backend was terminated, a network blip), the lock was silently gone while the projector went on
-- folding, and a standby took the lock and folded too. Ownership is now a row that names its owner:
--
-- - `owner`       the projector instance (host, pid and a random id of the process), or NULL;
-- - `owner_pid`   the backend its last claim or renewal came from (for operators, and see below);
-- - `lease_until` until when nobody else may take the row over (the database's clock only).
--
-- The owner renews the lease with every batch and every idle poll. Another instance may take the
-- row over only when it is free: no owner, the lease expired (the owner stalled or died), or the
-- owner's last backend is gone from this server (its connection died: take-over at once, as with
-- the advisory lock before; if the owner merely reconnects, it renews first or finds it lost).
-- A batch is written only after `projector_claim` has checked, with the row locked FOR UPDATE, that
-- the caller still owns the lease and that the checkpoint is where it left it; the batch's rows
-- and the new checkpoint are written in that same transaction. So a projector never writes a batch
-- it does not own, whatever happened to its session, and nothing is folded twice or skipped.
ALTER TABLE projector_checkpoints
    ADD COLUMN owner       text,
    ADD COLUMN owner_pid   integer,
    ADD COLUMN lease_until timestamptz;

-- Takes the lease, or renews it for its owner; true when the caller owns it afterwards.
-- Used by a standby trying to become active and by the owner while idle. In READ COMMITTED the
-- UPDATE re-checks its condition after waiting for a concurrent claim's row lock, so of two
-- instances racing for a free row exactly one wins, and a claim that renews wins over a take-over.
CREATE FUNCTION projector_acquire(p_projector text, p_owner text, p_lease_seconds float8)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO projector_checkpoints (projector, position) VALUES (p_projector, 0) ON CONFLICT DO NOTHING;
    UPDATE projector_checkpoints
       SET owner = p_owner, owner_pid = pg_backend_pid(),
           lease_until = clock_timestamp() + make_interval(secs => p_lease_seconds)
     WHERE projector = p_projector
       AND (owner IS NULL OR owner = p_owner OR lease_until < clock_timestamp()
            OR NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = owner_pid));
    RETURN FOUND;
END;
$$;

-- Every batch calls this first, in the batch's transaction. It refuses the batch with
-- SQLSTATE FL409 when the caller does not own the lease (another instance took it over: the caller
-- stands by), and with FL412 when the checkpoint is not where the caller started from (a rebuild
-- swapped in fresh read models: the caller reloads from the new checkpoint). Otherwise it renews
-- the lease; the row stays locked until the batch commits.
CREATE FUNCTION projector_claim(p_projector text, p_expected bigint, p_owner text, p_lease_seconds float8)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    row projector_checkpoints%ROWTYPE;
BEGIN
    SELECT * INTO row FROM projector_checkpoints WHERE projector = p_projector FOR UPDATE;
    IF row.owner IS DISTINCT FROM p_owner THEN
        RAISE EXCEPTION 'projector lease lost' USING ERRCODE = 'FL409',
            DETAIL = json_build_object('owner', row.owner)::text;
    END IF;
    IF row.position <> p_expected THEN
        RAISE EXCEPTION 'projector checkpoint moved' USING ERRCODE = 'FL412',
            DETAIL = json_build_object('expected', p_expected, 'actual', row.position)::text;
    END IF;
    UPDATE projector_checkpoints
       SET owner_pid = pg_backend_pid(), lease_until = clock_timestamp() + make_interval(secs => p_lease_seconds)
     WHERE projector = p_projector;
END;
$$;

-- The claim without an owner could not prove ownership: a projector of an older version calling
-- it now fails its batches instead of folding beside the owner of the lease.
DROP FUNCTION projector_claim(text, bigint);
