-- Handler definitions and their uploaded versions (issue 3).
-- A version's `version_key` is its numeric parts zero-padded to a fixed width, so that text order is
-- version order and `1.0` and `1.0.0.0` share one key: the primary key makes equal versions of one
-- definition impossible, whoever uploads them concurrently.

CREATE TABLE handler_definitions (
    id                  TEXT PRIMARY KEY NOT NULL,
    account_id          TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    description         TEXT NOT NULL,
    active_version_key  TEXT,
    created_at          BIGINT NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE handler_versions (
    definition_id   TEXT NOT NULL REFERENCES handler_definitions(id) ON DELETE CASCADE,
    version_key     TEXT NOT NULL,
    version         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('Pending', 'Accepted', 'Rejected')),
    package_digest  TEXT NOT NULL,
    package_size    BIGINT NOT NULL,
    manifest        TEXT NOT NULL,
    uploaded_by     TEXT NOT NULL,
    uploaded_at     BIGINT NOT NULL,
    reviewed_by     TEXT,
    reviewed_at     BIGINT,
    review_comment  TEXT,
    PRIMARY KEY (definition_id, version_key)
);
CREATE INDEX handler_versions_status ON handler_versions(status, uploaded_at);
CREATE INDEX handler_versions_package ON handler_versions(package_digest);
