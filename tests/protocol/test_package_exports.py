"""``HTTP1ClientProtocol`` is importable from ``asyncweb.protocol``, like the server side."""

from __future__ import annotations

import asyncweb.protocol
import asyncweb.protocol.client
import asyncweb.simple_httpclient


def test_client_protocol_is_exported_from_the_protocol_package() -> None:
    from asyncweb.protocol import HTTP1ClientProtocol

    # The very class the HTTP client runs its connections on, not a copy.
    assert HTTP1ClientProtocol is asyncweb.protocol.client.HTTP1ClientProtocol
    assert HTTP1ClientProtocol is asyncweb.simple_httpclient.HTTP1ClientProtocol
    assert asyncweb.protocol.HTTP1ClientProtocol is HTTP1ClientProtocol
