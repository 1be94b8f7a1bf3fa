"""set_header/add_header remember names already found valid; a name must still be judged
the same way whether or not it (or any other name) was seen before."""

from __future__ import annotations

from asyncweb.web import Application, RequestHandler
from tests.support.servers import Fetch, Serve


class NamesHandler(RequestHandler):
    def get(self) -> None:
        name = self.get_argument("name")
        try:
            self.add_header(name, "1")
            self.set_header(name, "2")
        except ValueError:
            self.write("refused")
            return
        self.write("taken")


async def test_header_names_are_judged_alike_on_every_request(serve: Serve, fetch: Fetch) -> None:
    url = await serve(Application([(r"/", NamesHandler)]))
    # Valid and invalid names, each asked for twice, after enough distinct names to fill the
    # remembered set: the answer must not change once a name (or another) was seen.
    names = [f"X-Filler-{i}" for i in range(300)]
    cases = {"X-Good": "taken", "X%20Bad": "refused", "X:Bad": "refused", "X-Good2": "taken"}
    for _ in range(2):
        for quoted, expected in cases.items():
            response = await fetch(f"{url}/?name={quoted}")
            assert response.status == 200
            assert response.body.decode() == expected, quoted
            if expected == "taken":
                assert response.headers[quoted] == "2"
        for name in names[:150]:
            assert (await fetch(f"{url}/?name={name}")).body == b"taken"
        names = names[150:]
