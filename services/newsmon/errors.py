"""newsmon's exception tree.

    NewsmonError                 base of every error we raise on purpose
    ├── ConfigError              bad configuration; the CLI prints it on one line and exits 2
    ├── FetchError               an outbound HTTP request failed                       (retriable)
    │   ├── FetchTimeout         connect/read/total timeout                            (retriable)
    │   ├── BlockedAddress       target resolves to a private/loopback/link-local address (not retriable)
    │   ├── TooLarge             body or decompressed body over the cap                (not retriable)
    │   ├── TooManyRedirects     redirect limit or loop                                (not retriable)
    │   └── HTTPStatusError      a status we do not accept; retriable for 408/425/429/5xx
    ├── ParseError               a document we cannot turn into entries                (not retriable)
    ├── BusError                 the transport failed                                  (retriable)
    ├── StoreError               the database failed                                   (retriable)
    ├── QuerySyntaxError         a topic query does not parse; carries line and column (not retriable)
    └── DeliveryError            a delivery attempt failed; `retriable` per outcome

`retriable` is decided by the class (or by the instance for status codes) and read by retry loops, so no loop keeps
its own list of exception types. Foreign exceptions (httpx, aiokafka, SQLAlchemy) are translated into these at the
module that uses the library.
"""

from __future__ import annotations


class NewsmonError(Exception):
    """Base class of newsmon's own errors."""

    retriable: bool = False


class ConfigError(NewsmonError):
    """Configuration is invalid; the message names the key, the value and the reason."""


class FetchError(NewsmonError):
    """An outbound HTTP request failed."""

    retriable = True


class FetchTimeout(FetchError):
    """The server did not answer in time."""


class BlockedAddress(FetchError):
    """The target address is refused by the network policy."""

    retriable = False


class TooLarge(FetchError):
    """The response is larger than allowed."""

    retriable = False


class TooManyRedirects(FetchError):
    """Redirect limit exceeded, or a redirect loop."""

    retriable = False


class HTTPStatusError(FetchError):
    """The server answered with a status we do not accept."""

    def __init__(self, status: int, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after
        self.retriable = status in (408, 425, 429) or status >= 500


class ParseError(NewsmonError):
    """A document could not be parsed."""


class BusError(NewsmonError):
    """The message bus failed."""

    retriable = True


class StoreError(NewsmonError):
    """The store failed."""

    retriable = True


class QuerySyntaxError(NewsmonError):
    """A topic query does not parse."""

    def __init__(self, message: str, line: int, column: int, source: str = "") -> None:
        where = f"{source}:" if source else ""
        super().__init__(f"{where}{line}:{column}: {message}")
        self.line = line
        self.column = column


class DeliveryError(NewsmonError):
    """A delivery attempt failed."""

    def __init__(self, message: str, *, retriable: bool, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.status = status
        self.retry_after = retry_after
