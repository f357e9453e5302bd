-- Campaigns (SPEC 13): an email whose recipients come from an uploaded file.

CREATE TABLE campaigns (
    id              text PRIMARY KEY,                -- cmp_<32 hex>
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,  -- orders GET /v1/campaigns
    api_key_id      uuid NOT NULL,
    email_id        text NOT NULL,
    format          text NOT NULL CHECK (format IN ('csv', 'jsonl')),
    skip_invalid    boolean NOT NULL,
    send_at         timestamptz,
    test_mode       boolean NOT NULL DEFAULT false,
    -- The key's policy for each row, as it was when the campaign was created (SPEC 12):
    -- the recipient domains allowed (NULL: any) and the daily recipient quota (NULL: none).
    recipient_domains  text[],
    daily_quota        integer,
    status          text NOT NULL CHECK (status IN ('awaiting_upload', 'validating', 'scheduled',
                                                    'sending', 'completed', 'cancelled', 'failed')),
    upload_key      text NOT NULL UNIQUE,            -- the file's name in the upload store
    -- Rows of the file (set as validation goes) and the first 100 errors, in line order.
    rows_total      integer NOT NULL DEFAULT 0,
    rows_invalid    integer NOT NULL DEFAULT 0,
    error_count     integer NOT NULL DEFAULT 0,
    errors          jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- Checkpoints. Validation: the file's rows up to this line are staged (and counted).
    -- Fan-out: rows are recorded as recipients up to recorded_through, and their chunks are on
    -- the processing queue up to queued_through; validated = the whole file was read.
    validated_through  integer NOT NULL DEFAULT 0,
    validated          boolean NOT NULL DEFAULT false,
    recorded_through   integer NOT NULL DEFAULT 0,
    queued_through     integer NOT NULL DEFAULT 0,
    fanned_out         boolean NOT NULL DEFAULT false,
    -- Who processes it now: one processor at a time, its lease renewed at each checkpoint.
    worker_token    uuid,
    worker_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- One campaign per email (per key): its email_id names its recipients on GET /v1/mail.
CREATE UNIQUE INDEX campaigns_email_once ON campaigns (api_key_id, email_id);
-- What the minute tick looks at: due scheduled campaigns, and stalled processing.
CREATE INDEX campaigns_active ON campaigns (status, send_at)
    WHERE status IN ('validating', 'scheduled', 'sending');

-- The file's valid rows, staged with COPY while the file is validated; the fan-out records
-- them as recipients (deliveries) chunk by chunk, in line order.
CREATE TABLE campaign_rows (
    campaign_id         text NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    line                integer NOT NULL,
    email_recipient_id  text NOT NULL,
    recipient           text NOT NULL,
    recipient_name      text,
    recipient_company   text,
    params              jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (campaign_id, line)
);

-- A cancelled campaign's rows that were not handed to a provider end as 'cancelled'.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check CHECK (
    status IN ('queued', 'sent', 'delivered', 'bounced', 'complained', 'failed', 'suppressed',
               'cancelled'));
ALTER TABLE deliveries ADD COLUMN campaign_id text;
CREATE INDEX deliveries_campaign_queued ON deliveries (campaign_id)
    WHERE campaign_id IS NOT NULL AND status = 'queued';

-- Per-status recipient counts of each campaign, kept by the statements that change them
-- (statement-level triggers: one counter update per statement, not per row), so a status
-- read is one small aggregate, never a scan of a million rows.
CREATE TABLE campaign_counts (
    campaign_id  text NOT NULL,
    status       text NOT NULL,
    n            bigint NOT NULL,
    PRIMARY KEY (campaign_id, status)
);

CREATE FUNCTION campaign_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_counts (campaign_id, status, n)
    SELECT campaign_id, status, count(*) FROM new_rows
     WHERE campaign_id IS NOT NULL GROUP BY campaign_id, status
    ON CONFLICT (campaign_id, status) DO UPDATE SET n = campaign_counts.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION campaign_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_counts (campaign_id, status, n)
    SELECT campaign_id, status, sum(delta) FROM (
        SELECT o.campaign_id, o.status, -1 AS delta
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE o.campaign_id IS NOT NULL AND o.status <> n.status
        UNION ALL
        SELECT n.campaign_id, n.status, 1
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE n.campaign_id IS NOT NULL AND o.status <> n.status
    ) moved GROUP BY campaign_id, status
    ON CONFLICT (campaign_id, status) DO UPDATE SET n = campaign_counts.n + excluded.n;
    RETURN NULL;
END $$;

CREATE TRIGGER deliveries_campaign_inserted AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION campaign_counts_inserted();
CREATE TRIGGER deliveries_campaign_updated AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION campaign_counts_updated();
