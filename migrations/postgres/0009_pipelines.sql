-- Maintenance from pipelines: the software version an upgrade hook records on its window, and
-- webhooks (admin-registered URLs that receive signed window and mirror events) with their
-- delivery log.
ALTER TABLE maintenance_windows ADD COLUMN version TEXT;

CREATE TABLE webhooks (
    id          TEXT    PRIMARY KEY,
    url         TEXT    NOT NULL,
    -- The HMAC key, sealed like peer URLs (`enc:v1:…`).
    secret      TEXT    NOT NULL,
    -- JSON list of event groups: "window", "mirror".
    events      TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    hook_id         TEXT    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_type      TEXT    NOT NULL,
    -- delivering, delivered, failed, dropped
    status          TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL,
    last_error      TEXT,
    response_status BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (hook_id, id);
