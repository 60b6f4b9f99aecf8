-- People who may sign in, and the audit of what they did to accounts and sessions.
CREATE TABLE users (
    id             TEXT    PRIMARY KEY,
    username       TEXT    NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,
    role           TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    -- Bumped when the password is reset or the user disabled: older sessions stop working.
    session_epoch  BIGINT  NOT NULL DEFAULT 0,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);

CREATE TABLE audit_events (
    id       BIGSERIAL PRIMARY KEY,
    at       BIGINT NOT NULL,
    kind     TEXT   NOT NULL,
    actor    TEXT,
    subject  TEXT,
    client   TEXT,
    detail   TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
