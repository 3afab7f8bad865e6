-- Idempotency: the ClientRequestToken of every settled command, bound to its request.
-- Written in the same transaction as the command's events; derivable from its CommandSettled event.
CREATE TABLE command_tokens (
    collection_id text        NOT NULL,
    operation     text        NOT NULL,
    client_token  text        NOT NULL,
    request_hash  text        NOT NULL,
    response      jsonb       NOT NULL,
    position      bigint      NOT NULL,
    recorded_at   timestamptz NOT NULL,
    -- client_token before operation: a batch looks its tokens up by collection and token.
    PRIMARY KEY (collection_id, client_token, operation)
);

-- Read models, folded from the log by the projector. Disposable: a rebuild recreates them.
CREATE TABLE rm_collections (
    collection_id    text        PRIMARY KEY,
    arn              text        NOT NULL,
    created_at       timestamptz NOT NULL,
    created_position bigint      NOT NULL,
    face_count       integer     NOT NULL,
    user_count       integer     NOT NULL
);
CREATE UNIQUE INDEX rm_collections_by_creation ON rm_collections (created_position);

CREATE TABLE rm_users (
    collection_id text        NOT NULL,
    user_id       text        NOT NULL,
    created_at    timestamptz NOT NULL,
    face_count    integer     NOT NULL,
    -- normalize(Σ normalize(embedding)) over the user's faces, float32 little-endian; NULL without faces.
    user_vector   bytea,
    PRIMARY KEY (collection_id, user_id)
);

CREATE TABLE rm_faces (
    collection_id     text             NOT NULL,
    face_id           text             NOT NULL,
    user_id           text,
    external_image_id text,
    image_id          text             NOT NULL,
    confidence        double precision NOT NULL,
    embedding         bytea            NOT NULL,
    indexed_at        timestamptz      NOT NULL,
    PRIMARY KEY (collection_id, face_id)
);
CREATE INDEX rm_faces_by_user ON rm_faces (collection_id, user_id, face_id);

-- How far each projector has folded the log; written with the read models it describes.
CREATE TABLE projector_checkpoints (
    projector text   PRIMARY KEY,
    position  bigint NOT NULL
);

-- Secrets shared by every instance on this database (pagination tokens are signed with one).
CREATE TABLE server_secrets (
    name   text  PRIMARY KEY,
    secret bytea NOT NULL
);
INSERT INTO server_secrets (name, secret)
VALUES ('pagination', decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
