-- One row per recipient of an email: the single source of truth for "was it sent?".
-- The unique index makes the same recipient of the same email (per API key) impossible to
-- record, and so to send, twice. Messages put on the queue by producers outside this service
-- have no API key: they share one namespace (api_key_id NULL).
CREATE TABLE deliveries (
    id                  uuid PRIMARY KEY,
    api_key_id          uuid,  -- no FK: keys are only soft-deleted; queue messages may name any
    email_id            text NOT NULL,
    email_recipient_id  text NOT NULL,
    recipient           text NOT NULL,
    status              text NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    provider            text,
    message_id          text,
    attempts            integer NOT NULL DEFAULT 0,
    last_error          text,
    status_detail       text,
    client_env_id       text,
    project_id          text,
    closure_id          text,
    metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- A sender holds the lease while it talks to the provider; nobody else sends meanwhile.
    lease_until         timestamptz,
    -- The outcome still has to reach the result queue (it was unreachable when it happened).
    result_pending      boolean NOT NULL DEFAULT false,
    queued_at           timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX deliveries_recipient_once
    ON deliveries (coalesce(api_key_id, '00000000-0000-0000-0000-000000000000'::uuid),
                   email_id, email_recipient_id);

CREATE INDEX deliveries_result_pending ON deliveries (updated_at) WHERE result_pending;
