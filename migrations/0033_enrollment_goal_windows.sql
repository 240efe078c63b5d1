-- Until when each enrollment's goal still counts (entered_at + the goal's window; NULL without a
-- goal, once converted, and for enrollments indexed before this column): a goal signal reaches
-- the customer's exited enrollments whose window is still open, so a purchase after leaving the
-- journey (the control group leaves at once) still converts.
ALTER TABLE enrollment_index ADD COLUMN goal_until timestamptz;
CREATE INDEX enrollment_index_open_goals ON enrollment_index (customer_id, goal_until)
    WHERE goal_until IS NOT NULL AND exited_at IS NOT NULL;
