-- Sign-in hardening: passwords an admin set must be changed at the next sign-in, and browsers a
-- user has signed in from before ("device cookies") are not slowed by other clients' failures.
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;

-- One row per (browser token, user) that signed in successfully from that browser. The token is
-- random and proves nothing by itself: it only exempts a correct password from the lockout that
-- other clients' failures caused (OWASP "device cookies").
CREATE TABLE trusted_devices (
    token       TEXT    NOT NULL,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    trusted_at  INTEGER NOT NULL,
    PRIMARY KEY (token, user_id)
);
CREATE INDEX trusted_devices_trusted_at ON trusted_devices (trusted_at);
