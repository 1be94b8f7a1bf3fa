"""Fixture applications for the interop tests (WSGI, ASGI, fake OAuth providers)."""
