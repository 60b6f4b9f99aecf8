-- API tokens: named bearer credentials a user creates for scripts and upgrade hooks. Only a
-- SHA-256 of the token is kept (the token is 256 random bits, so a fast hash is enough: there is
-- nothing to guess). A token acts with `role` or its owner's current role, whichever is lower.
CREATE TABLE api_tokens (
    id            TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
-- A name is unique among a user's tokens that are not revoked.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (user_id, name) WHERE revoked_at IS NULL;
