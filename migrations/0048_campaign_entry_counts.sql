-- How many customers entered each campaign version, for its enrollment cap. An entry into a
-- capped version takes its place here in the transaction that records it (the API's unit of
-- work, or the campaign process's page): `entered` goes up only while it is below the cap, and
-- the row stays locked until that transaction ends, so entries at once, from any process, wait
-- for each other and never pass the cap. A rolled-back entry gives its place back with it.
CREATE TABLE campaign_entry_counts (
    campaign_id uuid    NOT NULL,
    version     integer NOT NULL,
    entered     integer NOT NULL,
    PRIMARY KEY (campaign_id, version)
);

-- The entries made so far, as the campaign process has indexed them.
INSERT INTO campaign_entry_counts (campaign_id, version, entered)
SELECT campaign_id, version, count(*) FROM enrollment_index GROUP BY campaign_id, version;
