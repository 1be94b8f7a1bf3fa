"""Tornado's ``tornado.platform`` package: only ``asyncio`` is needed, since every asyncweb
loop is an asyncio loop."""
