"""One process of the shared rate-limit test: N relight runs through the api backend.

Usage: python ratelimit_worker.py BASE_URL N MODE START_AT [REDIS_URL PREFIX REQUESTS WINDOW_S]
(the API key comes from BKBN_API_KEY). MODE is ``shared`` (a SharedPacer in Redis with
the key's limit, REQUESTS per WINDOW_S) or ``local`` (the client's own in-process
pacer). Starts at wall-clock START_AT so that the processes contend, and prints one JSON
line: statuses seen on the wire, successes, failures.
"""

import io
import json
import os
import sys
import time
from collections import Counter

import httpx
from PIL import Image

from bkbn_pipelines._errors import BkbnError
from bkbn_pipelines._events import Result
from bkbn_pipelines.backends import GraphRequest, InputFile, make_backend
from bkbn_pipelines.client._shared_ratelimit import SharedPacer, pacer_key


class CountingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.statuses: Counter[int] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.statuses[response.status_code] += 1
        return response


def main() -> None:
    base_url, n, mode, start_at = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    api_key = os.environ["BKBN_API_KEY"]
    pacer = None
    if mode == "shared":
        redis_url, prefix, requests, window_s = sys.argv[5:9]
        pacer = SharedPacer(
            pacer_key(base_url, api_key),
            redis_url=redis_url,
            prefix=prefix,
            requests=int(requests),
            window_s=float(window_s),
        )
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 170, 160)).save(buf, format="PNG")
    request = GraphRequest(
        graph="relight", inputs=[InputFile(data=buf.getvalue(), media_type="image/png")]
    )
    transport = CountingTransport()
    # what BackboneResource builds for backend="api", with the pacer added
    backend = make_backend(
        "api", base_url=base_url, api_key=api_key, transport=transport, pacer=pacer, max_retries=4
    )
    ok = failed = 0
    time.sleep(max(0.0, start_at - time.time()))
    for _ in range(n):
        try:
            events = list(backend.stream(request))
            ok += isinstance(events[-1], Result)
        except BkbnError as exc:
            failed += 1
            print(f"failed: {type(exc).__name__}", file=sys.stderr)
    backend.close()
    statuses = {str(k): v for k, v in transport.statuses.items()}
    print(json.dumps({"ok": ok, "failed": failed, "statuses": statuses}))


if __name__ == "__main__":
    main()
