"""Use cases of campaigns: create and edit their journeys, and take them through their life."""
