"""Content-Encoding decoding with a cap on the decoded size (gzip, deflate, brotli; bombs raise TooLarge)."""

from __future__ import annotations

import zlib

import brotli

from newsmon.errors import FetchError, TooLarge

_GZIP_MAGIC = b"\x1f\x8b"


def sniff_gzip(data: bytes, limit: int) -> bytes:
    """Gunzip a body that is gzip without saying so (a common server misconfiguration)."""
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return decompress(data, "gzip", limit)
    except FetchError as exc:
        if isinstance(exc, TooLarge):
            raise
        return data


def decompress(data: bytes, encoding: str, limit: int) -> bytes:
    """Decode one Content-Encoding, never producing more than `limit` bytes (bombs raise TooLarge)."""
    try:
        if encoding in ("gzip", "x-gzip"):
            return _inflate(data, 16 + zlib.MAX_WBITS, limit)
        if encoding == "deflate":
            try:
                return _inflate(data, zlib.MAX_WBITS, limit)
            except zlib.error:
                return _inflate(data, -zlib.MAX_WBITS, limit)
        if encoding == "br":
            return _unbrotli(data, limit)
    except (zlib.error, brotli.error) as exc:
        err = FetchError(f"corrupt {encoding} body: {exc}")
        err.retriable = False
        raise err from None
    return data


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"decompressed body is over the {limit}-byte cap")


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    out = bytearray()
    pending = data
    while pending:
        inflater = zlib.decompressobj(wbits)
        chunk = inflater.decompress(pending, limit + 1 - len(out))
        out += chunk
        while inflater.unconsumed_tail and len(out) <= limit:
            out += inflater.decompress(inflater.unconsumed_tail, limit + 1 - len(out))
        if len(out) > limit:
            raise _too_large(limit)
        if not inflater.eof:
            break  # truncated stream: keep what we have, the parser takes what it can
        # gzip allows several members back to back
        pending = inflater.unused_data if wbits > zlib.MAX_WBITS else b""
        if pending and not pending.startswith(_GZIP_MAGIC):
            break
    return bytes(out)


def _unbrotli(data: bytes, limit: int) -> bytes:
    decoder = brotli.Decompressor()
    out = bytearray(decoder.process(data, output_buffer_limit=1 << 20))
    while len(out) <= limit and not decoder.is_finished() and not decoder.can_accept_more_data():
        out += decoder.process(b"", output_buffer_limit=1 << 20)
    if len(out) > limit:
        raise _too_large(limit)
    return bytes(out)
