-- Refresh tokens are looked up by a time-ordered identifier (a UUIDv7 carried inside the token)
-- instead of by the hash of the whole value: new tokens then append to the primary key instead of
-- landing on random pages, which is what bounded the token endpoint. Tokens issued before this
-- migration stop working; their clients fall back to the client-credentials grant.
DROP TABLE refresh_tokens;

CREATE TABLE refresh_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    secret_hash  BLOB NOT NULL,
    client_id    TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX refresh_tokens_client ON refresh_tokens(client_id);
