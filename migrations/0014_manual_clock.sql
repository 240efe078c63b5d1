-- The manual clock's time (CHORUS_CLOCK=manual), so a restart resumes where the clock stood
-- instead of at wall time, which would put what was recorded before in the future. One row.
CREATE TABLE manual_clock (
    one  boolean     PRIMARY KEY DEFAULT true CHECK (one),
    now  timestamptz NOT NULL
);
