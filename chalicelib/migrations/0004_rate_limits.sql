-- Requests per API key per minute (fixed windows), shared by every process.
CREATE TABLE rate_limit_windows (
    api_key_id    uuid NOT NULL,
    window_start  timestamptz NOT NULL,
    hits          integer NOT NULL,
    PRIMARY KEY (api_key_id, window_start)
);
