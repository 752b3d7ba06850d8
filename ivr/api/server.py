"""Running the API: `ApiRunner`, an aiohttp AppRunner whose connections answer malformed HTTP with the JSON error.

Rules for this file:
- A request aiohttp cannot parse (an over-long line, NUL or a bad character in a header, a broken request line or
  body framing) never reaches the application or its middlewares: aiohttp's `RequestHandler.handle_error` answers
  it, as text/plain echoing the raw bytes, and logs a traceback at ERROR. `ApiRequestHandler` answers such a
  request with the documented `{"error": "bad_request", "detail": ...}` instead, without echoing any input, and
  logs one line without a traceback (it is the client's fault, not the service's).
- aiohttp (checked with 3.14) has no public hook for this: `Application(handler_args=...)` only sets constructor
  arguments of RequestHandler, and `web.Server` builds RequestHandler itself. So `ApiServer` is a `web.Server`
  whose connections use our subclass, and `ApiRunner` makes the server it builds an `ApiServer`.
  tests/api/test_hostile.py pins this behaviour, so an aiohttp upgrade that changes it fails there.
- Anything else (a bug that escaped the error middleware) keeps aiohttp's handling: a 500 with a logged traceback.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    ContentLengthError,
    HttpProcessingError,
    InvalidHeader,
    LineTooLong,
    TransferEncodingError,
)

from ivr.api.errors import error_response

log = logging.getLogger("ivr.api")

# What was wrong, in fixed words: the exception's own message quotes the raw bytes a client sent.
_WHAT = (
    (LineTooLong, "a request line or header line is too long"),
    (InvalidHeader, "a header name or value is not valid"),
    (BadHttpMethod, "the method is not valid"),
    (BadStatusLine, "the request line is not valid"),
    ((ContentLengthError, TransferEncodingError), "the body framing (Content-Length / Transfer-Encoding) is not valid"),
    (BadHttpMessage, "the request is not valid HTTP/1.1"),
)


def _what(exc: HttpProcessingError) -> str:
    for kind, words in _WHAT:
        if isinstance(exc, kind):
            return words
    return "the request is not valid HTTP/1.1"


class ApiRequestHandler(web.RequestHandler):
    """aiohttp's per-connection protocol, answering unparsable requests with the API's JSON error."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError) or not 400 <= status < 500:
            return super().handle_error(request, status, exc, message)
        what = _what(exc)
        # Non-HTTP traffic on the port (TLS, scanners) is noise: aiohttp logs it at DEBUG too.
        level = logging.DEBUG if isinstance(exc, BadHttpMethod) else logging.INFO
        log.log(level, "refused a malformed HTTP request from %s: %s (%d)", request.remote, what, status)
        if request.writer.output_size > 0:  # a response has started: nothing more can be said on this connection
            raise ConnectionError("response already started; the connection is closed")
        response = error_response(status, "bad_request", f"{what}; the request was not processed")
        response.force_close()
        return response


class ApiServer(web.Server):
    """A `web.Server` whose connections are `ApiRequestHandler`s (same arguments as aiohttp passes)."""

    def __call__(self) -> web.RequestHandler:
        return ApiRequestHandler(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    """`web.AppRunner` for the API: use it wherever the app is served (the service, the tests)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The server AppRunner built, with our connection class: ApiServer adds no state, only __call__.
        server.__class__ = ApiServer
        return server
