"""Where one request's time goes, by layer: cProfile over per_request.py (asyncweb) or
aiohttp_per_request.py, own time of each function summed by the file it lives in.

    python breakdown.py asyncweb hello|realistic h11|httptools [N]
    benchmarks/.venv/bin/python breakdown.py aiohttp hello|realistic [N]

cProfile adds a fixed cost per call, so shares lean towards code that makes many small calls;
read them next to the callgrind totals (count.sh), not instead of them.
"""

import asyncio
import cProfile
import pstats
import sys

# (layer, substrings of a function's file or name); the first that matches wins.
LAYERS = [
    ("client (the driver: same for both)", ["asyncio/streams.py", "per_request.py"]),
    ("handler", ["/apps/"]),
    ("routing", ["asyncweb/routing.py", "web_urldispatcher.py"]),
    (
        "parsing (head, headers, query, cookies)",
        [
            "/h11/",
            "request_parser.py",
            "httptools",
            "http_parser",
            "httputil/headers.py",
            "httputil/urls.py",
            "http/cookies.py",
            "urllib/parse.py",
            "multidict",
            "yarl",
            "web_request.py",
            "helpers.py",
            "_cookie_helpers.py",
        ],
    ),
    (
        "framework: handler object, request, response building",
        [
            "response_head.py",
            "web/handler",
            "web/rendering",
            "httputil/",
            "escape.py",
            "web_response.py",
            "http_writer.py",
            "json/",
            "web/application.py",
        ],
    ),
    (
        "protocol (connection, request objects)",
        [
            "asyncweb/protocol/",
            "httpserver.py",
            "web_protocol.py",
            "base_protocol.py",
            "web_app.py",
            "web_server.py",
        ],
    ),
    (
        "asyncio loop and transport (incl. send/recv)",
        [
            "asyncio/",
            "selectors.py",
            "socket",
            "uvloop",
            "<method 'send",
            "<method 'recv",
            "select.epoll",
            "<built-in method _asyncio",
        ],
    ),
]


def layer_of(filename: str, name: str) -> str:
    where = f"{filename}:{name}"
    for layer, marks in LAYERS:
        if any(mark in where for mark in marks):
            return layer
    return "other"


def main() -> None:
    framework, endpoint = sys.argv[1], sys.argv[2]
    if framework == "asyncweb":
        import per_request

        parser = sys.argv[3]
        n = int(sys.argv[4]) if len(sys.argv) > 4 else 3000
        run = per_request.main(n, endpoint, parser)
    else:
        import aiohttp_per_request

        n = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
        run = aiohttp_per_request.main(n, endpoint)
    profile = cProfile.Profile()
    profile.enable()
    asyncio.run(run)
    profile.disable()
    totals: dict[str, float] = {}
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, tottime, _ct, callers) in stats.items():
        if filename == "~" and callers and layer_of(filename, name) == "other":
            # A builtin (len, re, dict.get) counts for the code that called it.
            for (c_file, _c_line, c_name), timing in callers.items():
                key = layer_of(c_file, c_name)
                totals[key] = totals.get(key, 0.0) + timing[2]
            continue
        key = layer_of(filename, name)
        totals[key] = totals.get(key, 0.0) + tottime
    whole = sum(totals.values())
    if "--other" in sys.argv:
        rows = [
            (v[2], k)
            for k, v in stats.items()
            if layer_of(k[0], k[2]) == "other" and not (k[0] == "~" and v[4])
        ]
        for tottime, key in sorted(rows, reverse=True)[:15]:
            print(f"  other: {1e6 * tottime / n:6.1f} us  {key}")
    print(f"{framework} {endpoint} {' '.join(sys.argv[3:4]) if framework == 'asyncweb' else ''}")
    for key, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {key:45} {100 * seconds / whole:5.1f}%  {1e6 * seconds / n:7.1f} us/request")


if __name__ == "__main__":
    main()
