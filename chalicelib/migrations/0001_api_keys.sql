-- API keys: only a SHA-256 hash of each key is stored, never the key.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    key_hash    bytea NOT NULL UNIQUE,
    is_active   boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    deleted_at  timestamptz
);

-- Origins a key may be used from: host, host:port or *.domain (lower case).
CREATE TABLE api_key_origins (
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    api_key_id  uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, name)
);
