"""The realistic endpoint (see asyncweb_realistic.py) on Starlette under uvicorn with h11."""

from _starlette_app import serve

if __name__ == "__main__":
    serve("h11", realistic=True)
