"""The outermost middleware: a request id for every request, its log context, and its metrics.

- The request id is the client's X-Request-ID when it is sane (1-128 characters of
  `A-Z a-z 0-9 . _ -`), else a new one. It is echoed in the response's X-Request-ID, put on
  every log line of the request (with the tenant id once authentication knows it), and
  carried in any Dramatiq message the request sends, so the worker's lines carry it too.
- Each request is counted by its URL route name (never the raw path, which would make a
  series per object id), method and status, with its latency in a fixed-bucket histogram.
"""

import contextvars
import time
from collections.abc import Iterable, Iterator

from django.conf import settings

from config.logging import log_context, log_context_get, request_id_new, request_id_sane
from config.metrics_recording import http_request_observe

REQUEST_ID_HEADER = "X-Request-ID"


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        incoming = request.headers.get(REQUEST_ID_HEADER)
        request_id = incoming if request_id_sane(incoming) else request_id_new()
        request.request_id = request_id
        with log_context(request_id=request_id, tenant_id=None):
            response = self.get_response(request)
            # Django logs a 4xx/5xx after the middleware returns: leave the context on the request.
            request.parla_log_context = log_context_get()
            if _streams_a_body(response):
                # A streamed body is produced after this returns; produce it in this context.
                context = contextvars.copy_context()
                response.streaming_content = _in_context(context, response.streaming_content)
        response[REQUEST_ID_HEADER] = request_id
        http_request_observe(
            endpoint=_endpoint(request), method=request.method or "", status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response


def _streams_a_body(response) -> bool:
    # A file is handed to the server as it is (sendfile); reading it logs nothing.
    return response.streaming and not response.is_async and getattr(response, "file_to_stream", None) is None


def _in_context(context: contextvars.Context, iterable: Iterable[bytes]) -> Iterator[bytes]:
    iterator = iter(iterable)
    while True:
        try:
            chunk = context.run(next, iterator)
        except StopIteration:
            return
        yield chunk


def _endpoint(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is not None:
        # An unnamed route is known by its pattern ("api/v1/speech/"), still never by the path.
        return match.view_name if match.url_name else match.route
    if request.path.startswith(settings.STATIC_URL):
        return "static"
    return "unmatched"

