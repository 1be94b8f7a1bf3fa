"""Starlette under uvicorn with the h11 parser, on uvloop. Content-Type: text/plain."""

from _starlette_app import serve

if __name__ == "__main__":
    serve("h11")
