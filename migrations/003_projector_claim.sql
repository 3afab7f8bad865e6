-- A projector writes a batch only if the checkpoint is still where it started from: otherwise
-- another projector, or a rebuild that swapped in fresh read models, moved it, and the batch (folded
-- from an older state) must not land. Raises SQLSTATE FL412; the projector then reloads.
CREATE FUNCTION projector_claim(p_projector text, p_expected bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    current bigint;
BEGIN
    SELECT position INTO current FROM projector_checkpoints WHERE projector = p_projector FOR UPDATE;
    IF coalesce(current, 0) <> p_expected THEN
        RAISE EXCEPTION 'projector checkpoint moved' USING ERRCODE = 'FL412',
            DETAIL = json_build_object('expected', p_expected, 'actual', coalesce(current, 0))::text;
    END IF;
END;
$$;
