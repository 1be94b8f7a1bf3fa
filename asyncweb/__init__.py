"""asyncweb: Tornado's programming model, natively on asyncio."""

version = "0.1.0"
version_info = (0, 1, 0, 0)
