"""The HTTP protocol `mtctl serve` runs uvicorn with: httptools, with a request's head bounded.

uvicorn's httptools protocol has no limit on a request's line and headers: a 1 MB header or a
60 KB cookie is read whole and answered 200. Its h11 protocol has one
(`h11_max_incomplete_event_size`), but serves repeat provisioning fetches about a third
slower. So this keeps httptools and counts the bytes of each request's head as they arrive:
once they pass MAX_HEAD before the head's blank line, the answer is 431 and the connection is
closed, so memory stays bounded whatever a client sends.
"""

from __future__ import annotations

import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD = 32 * 1024  # bytes of a request line and its headers (nginx's default is 32 KiB)
END = b"\r\n\r\n"
TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
             b"content-type: text/plain; charset=utf-8\r\ncontent-length: 31\r\n"
             b"connection: close\r\n\r\nrequest headers are too large.\n")
log = logging.getLogger("mtctl.serve")


class BoundedHead(HttpToolsProtocol):
    """HttpToolsProtocol refusing (431) a request whose head passes MAX_HEAD bytes."""

    head = 0          # bytes of the current request's head received so far
    in_head = True    # between requests, or inside a request's line and headers
    tail = b""        # the last bytes of the head so far: its blank line may be split
    refused = False

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.in_head:
            end = (self.tail + data).find(END)
            self.head += len(data) if end < 0 else end + len(END) - len(self.tail)
            self.tail = data[-(len(END) - 1):]
            if self.head > MAX_HEAD:
                self.refused = True
                log.warning("a request's headers passed %d bytes: 431", MAX_HEAD)
                self.transport.write(TOO_LARGE)
                self.transport.close()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self.in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head, self.head, self.tail = True, 0, b""
