-- Recovery: every queued recipient can be put on the queue again, by a replay or a sweeper,
-- without the client's request, and only the holder of a send lease may finish it.

-- Each email's content (templates, sender, attachments...) once, without its recipients.
CREATE TABLE emails (
    id          uuid PRIMARY KEY,
    api_key_id  uuid,
    email_id    text NOT NULL,
    content     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX emails_once
    ON emails (coalesce(api_key_id, '00000000-0000-0000-0000-000000000000'::uuid), email_id);

ALTER TABLE deliveries
    -- The recipient's own template values, to rebuild its message.
    ADD COLUMN recipient_name     text,
    ADD COLUMN recipient_company  text,
    -- Set when its message reached the queue, or a send was attempted.
    ADD COLUMN dispatched_at      timestamptz,
    -- Who holds the send lease: only the holder may release it or record the outcome.
    ADD COLUMN lease_token        uuid;

-- Every row written before this migration got its message onto the queue (the code deleted
-- the ones it could not queue).
UPDATE deliveries SET dispatched_at = updated_at WHERE dispatched_at IS NULL;

-- Rows the sweeper looks at: queued but never dispatched, and dispatched but still queued.
CREATE INDEX deliveries_undispatched ON deliveries (updated_at)
    WHERE status = 'queued' AND dispatched_at IS NULL;
CREATE INDEX deliveries_waiting ON deliveries (dispatched_at)
    WHERE status = 'queued' AND dispatched_at IS NOT NULL;
