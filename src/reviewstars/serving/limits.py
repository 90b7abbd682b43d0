"""What one request, and the server as a whole, may take on: declared once, with the limits
each setting must keep (checked when the server is made, from the command line or Python).
Beyond a limit a client gets a quick 413 or 503, never a slow or stuck server."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings.fields import Settings, setting


def parse_port(text: str | int) -> int:
    return int(text)


@dataclass(frozen=True)
class ServeLimits(Settings):
    max_texts: int = setting(256, "Most texts per request (more: 413).", at_least=1, at_most=100_000)
    max_chars: int = setting(20_000, "Most characters per text (more: 413).", at_least=1, at_most=10_000_000)
    max_body_bytes: int = setting(8 << 20, "Most bytes in a request body, counted as it arrives (more: 413).",
                                  at_least=1024, at_most=1 << 30)
    max_batch: int = setting(64, "Most texts per model call (requests are gathered into batches).", at_least=1, at_most=4096)
    max_wait_ms: float = setting(0.0, "Longest wait for more requests before a batch runs (0: none; while the model is "
                                      "busy the next batch gathers by itself).", at_least=0, at_most=10_000)
    max_queue: int = setting(1024, "Most texts waiting for the model; past it: 503 with Retry-After.", at_least=1, at_most=10_000_000)
    max_queue_wait_s: float = setting(10.0, "Longest wait in the queue before a 503.", above=0, at_most=3600)
    max_connections: int = setting(256, "Most open connections: past it the one waiting on its client longest "
                                        "(idle, or still sending) is closed to make room.", at_least=1, at_most=65_535)
    request_timeout_s: float = setting(15.0, "A connection must send a whole request within this many seconds "
                                             "(of opening, or of its last answer), or it is closed.", above=0, at_most=3600)
