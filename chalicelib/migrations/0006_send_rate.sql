-- Send-rate governance shared by every instance: one row per provider. A sender reserves the
-- next slot (next_slot moves 1/rate seconds further) and waits until its slot comes.
CREATE TABLE send_rate_slots (
    provider   text PRIMARY KEY,
    next_slot  timestamptz NOT NULL DEFAULT now()
);
