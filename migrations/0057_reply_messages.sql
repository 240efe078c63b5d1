-- The reply statuses process's memory: every outbound message of a thread and its conversation,
-- written in its runner's transaction as it reads each `Conversation.MessageSent`, so a
-- message's later statuses find the thread to tell (docs/conversations.md).
CREATE TABLE reply_messages (
    message_id      uuid PRIMARY KEY,
    conversation_id uuid NOT NULL
);
