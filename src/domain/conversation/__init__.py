"""Conversations: one thread per customer and topic across channels (`aggregate`), the agents
and teams who answer them (`agents`, with `working_hours`), routing by intent, customer context
and load (`routing`, its document read by `routing_reader`, kept in versions by `routing_book`),
and service levels per channel kind (`sla`). The channel is the medium, never the unit: routing
and SLAs see only its kind (`vocabulary.kind_of`)."""
