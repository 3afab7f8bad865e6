-- Indexes for the audit queries (GetUserHistory, GetPrincipalHistory, GetCollectionHistory,
-- GetRequestHistory and `faceledger audit`), so that each answers by one index range in position
-- order instead of scanning the log. A face's history needs none: it is its stream.
--
-- An audit entry is any event but the envelope of an accepted command (CommandAccepted before its
-- effects, CommandSettled after them): the facts, the rejected requests, and command records added
-- later (an idempotent replay) all count. The indexes are partial on that, and the queries repeat
-- the predicate word for word so that the planner can use them.

-- A user's entries: facts naming it (UserCreated, UserDeleted, the face facts of calls that named it)
-- and rejected requests naming it (their recorded request's UserId).
CREATE INDEX events_audit_user
    ON events (collection_id, (coalesce(data->>'userId', data->'request'->>'UserId')), position)
    WHERE type NOT IN ('CommandAccepted', 'CommandSettled');

-- What one principal did, everywhere and within one collection.
CREATE INDEX events_audit_principal
    ON events (principal, position)
    WHERE type NOT IN ('CommandAccepted', 'CommandSettled');
CREATE INDEX events_audit_principal_collection
    ON events (principal, collection_id, position)
    WHERE type NOT IN ('CommandAccepted', 'CommandSettled');

-- Everything one request caused (or the record of its refusal or replay).
CREATE INDEX events_audit_request
    ON events (request_id, position)
    WHERE type NOT IN ('CommandAccepted', 'CommandSettled');

-- From/To filters: recorded_at never decreases with position (append_events() keeps it so under the
-- append lock), so an instant maps to the first position recorded at or after it, and a time window
-- becomes a position range of the indexes above.
CREATE INDEX events_recorded_at ON events (recorded_at, position);
