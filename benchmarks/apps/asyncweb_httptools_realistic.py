"""asyncweb_realistic.py's app with the optional accelerated request parser (httptools)."""

from _serve import serve_asyncweb
from asyncweb_realistic import UserHandler

if __name__ == "__main__":
    serve_asyncweb([(r"/user/([^/]+)", UserHandler)], http_parser="httptools")
