-- A fallback's provider may report its cost before `FellBack` records whose send it answers
-- for: the campaign stats keep it, linked to no enrollment yet, and count it once linked.
ALTER TABLE campaign_stats_messages
    ALTER COLUMN enrollment_id DROP NOT NULL,
    ALTER COLUMN step DROP NOT NULL;
