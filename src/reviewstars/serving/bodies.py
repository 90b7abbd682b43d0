"""POST /predict bodies, read and checked in bounded time and memory.

The body is counted as it streams in (a chunked upload has no Content-Length to
trust) and refused at the limit. JSON past a few KB is parsed off the event loop, one
body at a time, and cut down at once to at most `max_texts` strings: the texts are
counted before any one is looked at, so a megabyte of `[1, 1, 1, ...]` costs tens of
milliseconds and a one-line answer, not the server's attention.

A thread does not keep a big parse from the event loop: `json.loads` holds the GIL until
it is done, and 7.8 MB of nested empty lists held it for over a second (eight such bodies,
20 s of a stalled /health). A valid body has two brackets of structure; one with more
brackets or braces than its texts could explain is parsed in a separate process, whose
time is not the server's. It has a slot of its own: a client sending such bodies in a loop
made every ordinary body past 64 KB wait 20 s behind them for the one slot they shared.

The other protocols' bodies (the Hugging Face shape at `/`, KServe's v2) past a few KB are
parsed in that process too, and refused there when they hold more JSON values than a
request of texts can: one brace of 600,000 keys, or one bracket of 4 million numbers, passed
a count of brackets and held the event loop for seconds.
"""

from __future__ import annotations

import asyncio
import json
from itertools import islice
from typing import Any

from starlette.requests import Request

from ..text import read_length

#: The two spellings of a body: ours, and the Hugging Face inference API's.
FIELDS = ("texts", "inputs")
#: Smaller JSON parses in well under a millisecond: not worth a thread.
INLINE_JSON_BYTES = 64 << 10
MAX_DETAIL_CHARS = 500


class Refusal(Exception):
    """A request answered with `status` and a one-line `detail`, whatever the client sent."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        detail = " ".join(detail.split())  # an exception's message may span lines
        super().__init__(detail)
        self.status, self.headers = status, headers or {}
        self.detail = detail if len(detail) <= MAX_DETAIL_CHARS else detail[: MAX_DETAIL_CHARS - 3] + "..."


class BodyReader:
    """Reads /predict bodies within `ServeLimits`: at most one big body is parsed at a time."""

    def __init__(self, max_body_bytes: int, max_texts: int, max_chars: int):
        self.max_body_bytes, self.max_texts, self.max_chars = max_body_bytes, max_texts, max_chars
        self.big_parse = asyncio.Semaphore(1)  # in a thread: the GIL is held while parsing, so one at a time
        self.apart = asyncio.Semaphore(1)  # suspicious /predict bodies, in a parser process: their own queue
        self.apart_protocols = asyncio.Semaphore(1)  # the other routes' large bodies, in the other parser process

    async def texts(self, request: Request) -> list[str]:
        return await self.texts_of_body(await self.read(request))

    async def texts_of_body(self, body: bytes) -> list[str]:
        if len(body) <= INLINE_JSON_BYTES:
            return self.parse(body)
        if body.count(b"[") + body.count(b"{") <= STRUCTURE_PER_TEXT * self.max_texts:
            async with self.big_parse:  # leaves the loop room to run between two
                return await asyncio.to_thread(self.parse, body)
        return await self._apart(self.apart, _parse_apart, body, self.max_texts, self.max_chars)

    async def payload_of_body(self, body: bytes, values_at_most: int) -> Any:
        """Any protocol's JSON payload: a small body parsed here, a larger one in the parser
        process, refused there when it holds more than `values_at_most` JSON values."""
        if len(body) <= INLINE_JSON_BYTES:
            return parse_json(body)
        return await self._apart(self.apart_protocols, _payload_apart, body, values_at_most)

    async def _apart(self, slot: asyncio.Semaphore, function, *arguments) -> Any:
        """`function(*arguments)` in the parser processes, one body per `slot` at a time (two
        slots, two processes: ordinary large bodies of the other routes never wait behind a
        client's suspicious ones)."""
        from concurrent.futures.process import BrokenProcessPool

        async with slot:
            try:
                status, found = await asyncio.get_running_loop().run_in_executor(_isolated_parser(), function, *arguments)
            except BrokenProcessPool:  # the process died (killed for memory, say): a new one for the next body
                stop_isolated_parser(wait=False)
                raise Refusal(503, "the body parser stopped while reading this body; retry shortly", {"Retry-After": "1"}) from None
        if status != 200:
            raise Refusal(status, found)
        return found

    async def read(self, request: Request) -> bytes:
        return await self.read_asgi(request.headers.get("content-length", ""), request.receive)

    async def read_asgi(self, declared: str, receive) -> bytes:
        """The body from an ASGI `receive`, counted as it arrives; `declared` is its Content-Length header."""
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_big(int(declared))
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Refusal(499, "the client went away before the body ended")  # nginx's code: no one reads it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_big(size, more=True)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def parse(self, body: bytes) -> list[str]:
        return self.texts_of(parse_json(body))

    def texts_of(self, payload: Any) -> list[str]:
        """The texts of a parsed body; the count is checked before any item."""
        field, texts = _field_of(payload)
        if len(texts) > self.max_texts:
            raise Refusal(413, f"{len(texts):,} texts in one request; the limit is {self.max_texts:,}")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise Refusal(422, f"{field}[{i}] is {_json_type(text)}, not a string")
            self.check_length(text, f"{field}[{i}]")
        return texts

    def check_length(self, text: str, field: str) -> None:
        """Within `max_chars` as written and as the model reads it (NFKC: "ﷺ" is 18 characters)."""
        if len(text) > self.max_chars:
            raise Refusal(413, f"{field} has {len(text):,} characters; the limit is {self.max_chars:,}")
        if not text.isascii() and (length := read_length(text)) > self.max_chars:
            raise Refusal(413, f"{field} has {length:,} characters as a model reads it (Unicode's NFKC form); "
                               f"the limit is {self.max_chars:,}")

    def _too_big(self, size: int, more: bool = False) -> Refusal:
        return Refusal(413, f"request body of {size:,}{'+' if more else ''} bytes is over the {self.max_body_bytes:,}-byte limit")


#: Brackets and braces a body may hold per text it is allowed before its parse goes to a
#: separate process (reviews do contain brackets; a body of nested lists holds millions).
STRUCTURE_PER_TEXT = 64
_parser_pool = None


def _isolated_parser():
    """Two processes for the bodies parsed apart (one per slot), started when the first one comes."""
    global _parser_pool
    if _parser_pool is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        _parser_pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
    return _parser_pool


def stop_isolated_parser(wait: bool = True) -> None:
    """At the server's end: the parser processes go with it (and a broken pool, at once)."""
    global _parser_pool
    if _parser_pool is not None:
        _parser_pool.shutdown(wait=wait, cancel_futures=True)
        _parser_pool = None


def _parse_apart(body: bytes, max_texts: int, max_chars: int) -> tuple[int, Any]:
    """In the parser process: (200, texts) or (status, detail); nothing to unpickle but plain values."""
    try:
        return 200, BodyReader(len(body), max_texts, max_chars).parse(body)
    except Refusal as refusal:
        return refusal.status, refusal.detail


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise Refusal(422, "the body is not valid JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, an integer of 5,000 digits
        raise Refusal(422, f"the body is not valid JSON: {error}") from None


def _payload_apart(body: bytes, values_at_most: int) -> tuple[int, Any]:
    """In the parser process: (200, the payload) or (status, detail)."""
    try:
        payload = parse_json(body)
    except Refusal as refusal:
        return refusal.status, refusal.detail
    count, stack = 0, [payload]
    while stack:  # every value, containers and their items alike
        value = stack.pop()
        count += 1
        if count > values_at_most:
            return 413, f"the body holds more than {values_at_most:,} JSON values; a request of texts holds far fewer"
        if isinstance(value, dict):
            stack.extend(value.values())
            count += len(value)  # (each key is a value too)
        elif isinstance(value, list):
            stack.extend(value)
    return 200, payload


def _field_of(payload: Any) -> tuple[str, list]:
    """("texts" or "inputs", its list): exactly one of the two, nothing beside it."""
    shape = 'send {"texts": ["a review", ...]} or {"inputs": "a review"}'
    if not isinstance(payload, dict):
        raise Refusal(422, f"the body is {_json_type(payload)}; {shape}")
    named = [name for name in FIELDS if name in payload]
    if len(named) != 1 or len(payload) != 1:
        others = ", ".join(json.dumps(key[:40]) for key in islice(payload, 3))
        raise Refusal(422, f"the body has keys {others or 'none'}{', ...' if len(payload) > 3 else ''}; {shape}")
    field, value = named[0], payload[named[0]]
    if field == "inputs" and isinstance(value, str):
        return field, [value]
    if not isinstance(value, list) or not value:
        raise Refusal(422, f'"{field}" is {_json_type(value)}; it must be a non-empty list of strings')
    return field, value


def _json_type(value: Any) -> str:
    if isinstance(value, list) and not value:
        return "an empty list"
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "true or false", type(None): "null", int: "a number", float: "a number"}
    return kinds[type(value)]
