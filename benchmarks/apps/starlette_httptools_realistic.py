"""The realistic endpoint (see asyncweb_realistic.py) on Starlette under uvicorn with httptools."""

from _starlette_app import serve

if __name__ == "__main__":
    serve("httptools", realistic=True)
