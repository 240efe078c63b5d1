-- When the version in force went live (activated, or published while active): a schedule's first
-- run counts its occurrences from then, not from when the schedule worker first looked.
ALTER TABLE enrollment_campaigns ADD COLUMN live_since timestamptz;
