"""Dashboard: what the system has learned and how its accounts stand, rendered on the server."""
