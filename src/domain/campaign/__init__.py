"""Campaigns: versioned journeys (`journey`), read and checked from JSON (`journey_reader`), the
Campaign aggregate that keeps their versions (`aggregate`), each customer's way through one
(`enrollment`), and the pure interpreter that decides the next step (`progress`)."""
