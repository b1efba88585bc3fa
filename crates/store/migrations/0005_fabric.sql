-- The fabric: handlers placed in channels, channels deployed to environments, the variables that
-- handler configurations refer to, and public handler definitions.

-- A public definition may be used by every account, not only its owner. Existing definitions stay
-- private: making code visible to others is the owner's decision.
ALTER TABLE handler_definitions ADD COLUMN public BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX handler_definitions_public ON handler_definitions(public, name);

CREATE TABLE handler_configurations (
    -- Aliases the rowid, so it survives VACUUM (a plain rowid may be renumbered) and each insert
    -- gets a higher one than every existing row: "creation order" is this column, which
    -- timestamps in seconds cannot give. PostgreSQL: BIGINT GENERATED ALWAYS AS IDENTITY.
    creation_order        INTEGER PRIMARY KEY,
    id                    TEXT NOT NULL UNIQUE,
    -- A handler belongs to its channel and goes with it.
    channel_id            TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    -- No foreign key: built-in handlers have fixed ids that are not rows of handler_definitions.
    definition_id         TEXT NOT NULL,
    version               TEXT NOT NULL,
    name                  TEXT NOT NULL,
    -- JSON object of name to text value; templates such as {{ variables.X }} are kept unresolved,
    -- since the variables they name may change after the handler is configured. ("values" is an
    -- SQL keyword, hence the longer name.)
    configuration_values  TEXT NOT NULL,
    -- JSON array of subjects; empty means every message of the channel.
    input_subjects        TEXT NOT NULL,
    -- JSON object of subject to {"channel": id} or {"endpoint": id}. No foreign keys on the
    -- targets: they live inside the JSON, and a route to a deleted target is reported by the
    -- runtime rather than silently dropped here.
    output_routes         TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    -- Handlers are addressed by name inside their channel.
    UNIQUE (channel_id, name)
);

-- A channel running in an environment; either going ends the deployment.
CREATE TABLE deployments (
    channel_id      TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    environment_id  TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    deployed_at     BIGINT NOT NULL,
    PRIMARY KEY (channel_id, environment_id)
);
-- The primary key serves lookups by channel; this one serves lookups by environment.
CREATE INDEX deployments_environment ON deployments(environment_id, channel_id);

CREATE TABLE variables (
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    scope_type  TEXT NOT NULL CHECK (scope_type IN ('account', 'channel', 'environment')),
    -- The channel or environment id; no foreign key because it names one of two tables (the
    -- triggers below remove a scope's variables with it). An account-wide variable repeats the
    -- account id, so that the primary key has no NULL in it.
    scope_id    TEXT NOT NULL CHECK (scope_type <> 'account' OR scope_id = account_id),
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, scope_type, scope_id, name)
);

-- What a foreign key with ON DELETE CASCADE would do if scope_id could have one: without these, a
-- deleted channel or environment would leave variables behind that nothing can reach.
CREATE TRIGGER variables_of_deleted_channel AFTER DELETE ON channels
BEGIN
    DELETE FROM variables WHERE scope_type = 'channel' AND scope_id = OLD.id;
END;
CREATE TRIGGER variables_of_deleted_environment AFTER DELETE ON environments
BEGIN
    DELETE FROM variables WHERE scope_type = 'environment' AND scope_id = OLD.id;
END;

-- `owner` lets `grantee` read its variables. A grant ends with either account.
CREATE TABLE variable_grants (
    owner_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    grantee_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (owner_id, grantee_id)
);
-- Cascading deletes of a grantee account look grants up by grantee.
CREATE INDEX variable_grants_grantee ON variable_grants(grantee_id);
