"""asyncweb_hello.py's app with the optional accelerated request parser (httptools)."""

from _serve import serve_asyncweb
from asyncweb_hello import MainHandler

if __name__ == "__main__":
    serve_asyncweb([(r"/", MainHandler)], http_parser="httptools")
