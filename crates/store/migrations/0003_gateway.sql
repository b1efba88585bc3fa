-- Channels, endpoints with their authorized routes, and the devices behind endpoints.
-- Endpoint keys are not stored: they are derived from the gateway's secret in the data directory,
-- the endpoint id and `key_version` (see mh-gateway), so rotating means bumping the version.

-- Environments created through the API belong to the account that created them; the shared ones
-- (`local`, those made by an administrator) have no owner and are visible to everybody.
ALTER TABLE environments ADD COLUMN account_id TEXT REFERENCES accounts(id) ON DELETE CASCADE;

CREATE TABLE channels (
    id           TEXT PRIMARY KEY NOT NULL,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE endpoints (
    id               TEXT PRIMARY KEY NOT NULL,
    account_id       TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    -- Comma-separated lowercase protocol names, e.g. 'http'.
    protocols_in     TEXT NOT NULL,
    protocols_out    TEXT NOT NULL,
    -- Newline-separated origins allowed by CORS; empty for none.
    allowed_origins  TEXT NOT NULL,
    registration     TEXT NOT NULL CHECK (registration IN ('open', 'key', 'disabled')),
    key_version      BIGINT NOT NULL,
    expires_at       BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX endpoints_account ON endpoints(account_id);

CREATE TABLE endpoint_routes (
    endpoint_id     TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    channel_id      TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    environment_id  TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    PRIMARY KEY (endpoint_id, channel_id, environment_id, direction)
);

CREATE TABLE devices (
    endpoint_id       TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    device_id         TEXT NOT NULL,
    -- Bumped whenever a token is issued; only a token of the current generation is valid.
    token_generation  BIGINT NOT NULL,
    disabled          BOOLEAN NOT NULL DEFAULT FALSE,
    registered_at     BIGINT NOT NULL,
    refreshed_at      BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, device_id)
);
