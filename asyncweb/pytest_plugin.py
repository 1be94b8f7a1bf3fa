"""pytest fixtures for asyncweb applications (placeholder until the fixtures land)."""
