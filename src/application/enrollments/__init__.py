"""Use cases on enrollments: a client puts a customer into a campaign entered through the API."""
