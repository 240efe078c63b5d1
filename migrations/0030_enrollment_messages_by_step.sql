-- A journey that leaves a send undelivered (on_not_delivered) withdraws that send's messages:
-- found by enrollment and step.
CREATE INDEX enrollment_messages_by_step ON enrollment_messages (enrollment_id, step);
