-- Keys a browser can carry (SPEC 12): key kinds, per-key policies, usage counters, stored
-- templates, and the template each recipient was rendered from.

-- browser: the request's Origin must be allowed (the seed's keys). server: no origin list,
-- refused when a request carries an Origin; optionally bound to client IP ranges.
ALTER TABLE api_keys
    ADD COLUMN kind        text NOT NULL DEFAULT 'browser' CHECK (kind IN ('browser', 'server')),
    ADD COLUMN allowed_ips cidr[] NOT NULL DEFAULT '{}',
    -- Only the fields set on the key; the defaults are filled in by the service (settings).
    ADD COLUMN policy      jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now();

-- Recipients accepted per key per UTC day (daily_recipient_quota), shared by every instance.
CREATE TABLE key_daily_usage (
    api_key_id  uuid NOT NULL,
    day         date NOT NULL,
    recipients  bigint NOT NULL,
    PRIMARY KEY (api_key_id, day)
);

-- Requests per key per client IP per minute (per_ip_per_minute), fixed windows.
CREATE TABLE key_ip_windows (
    api_key_id    uuid NOT NULL,
    client_ip     inet NOT NULL,
    window_start  timestamptz NOT NULL,
    hits          integer NOT NULL,
    PRIMARY KEY (api_key_id, client_ip, window_start)
);
CREATE INDEX key_ip_windows_age ON key_ip_windows (window_start);

-- Stored templates: a name and its immutable versions. seq orders pages.
CREATE TABLE templates (
    id              text PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    name            text NOT NULL,
    latest_version  integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    archived_at     timestamptz
);

CREATE TABLE template_versions (
    template_id    text NOT NULL REFERENCES templates (id),
    version        integer NOT NULL CHECK (version >= 1),
    name           text NOT NULL,
    subject        text NOT NULL,
    html           text NOT NULL,
    text           text,
    description    text,
    sample_params  jsonb NOT NULL DEFAULT '{}'::jsonb,
    params         text[] NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (template_id, version)
);

-- The stored template (and its version) a recipient's message was rendered from, and the
-- recipient's own params (the email's are in its stored content).
ALTER TABLE deliveries
    ADD COLUMN template_id       text,
    ADD COLUMN template_version  integer,
    ADD COLUMN recipient_params  jsonb NOT NULL DEFAULT '{}'::jsonb;
