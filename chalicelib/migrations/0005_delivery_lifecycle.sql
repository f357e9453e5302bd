-- Delivery lifecycle (SPEC 9-10): provider events, the suppression list, test keys.

-- Statuses after "sent": what the receiving side did with the message.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check CHECK (
    status IN ('queued', 'sent', 'delivered', 'bounced', 'complained', 'failed', 'suppressed'));

-- A test key's recipients only ever reach the simulator, whatever the provider chain.
ALTER TABLE deliveries ADD COLUMN test_mode boolean NOT NULL DEFAULT false;
ALTER TABLE api_keys ADD COLUMN mode text NOT NULL DEFAULT 'live'
    CHECK (mode IN ('live', 'test'));

-- Provider events find their recipient by the provider's message id.
CREATE INDEX deliveries_message_id ON deliveries (message_id) WHERE message_id IS NOT NULL;

-- Each recipient's history. event_key identifies one provider event (its own id, or a digest
-- of it): the same event delivered twice is stored, and so applied, once.
CREATE TABLE delivery_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    type         text NOT NULL,
    at           timestamptz NOT NULL,
    provider     text,
    detail       text,
    event_key    text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (delivery_id, event_key)
);

-- One list per deployment (like SES's account-level list); addresses in lower case.
CREATE TABLE suppressions (
    address     text PRIMARY KEY,
    reason      text NOT NULL CHECK (reason IN ('bounce', 'complaint', 'manual')),
    email_id    text,
    detail      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Mailgun webhook tokens already seen (replay protection); pruned once they are stale anyway.
CREATE TABLE webhook_tokens (
    provider  text NOT NULL,
    token     text NOT NULL,
    seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, token)
);
