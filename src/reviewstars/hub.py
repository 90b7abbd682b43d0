"""The Hugging Face Hub, when it is out of reach: found out in a moment, not after retries.

Offline, `datasets` and `transformers` retry a Hub they cannot reach for 25 to 56 seconds
before they fail (or fall back to their cache). Before the first call that may need the
Hub, one TCP connection (a few seconds at most) says whether it is there; when it is not,
the libraries are switched to their offline mode, so they answer from their cache at once
or fail at once, and the error can say what to do.
"""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlsplit

OFFLINE_VALUES = ("1", "true", "yes", "on")
CONNECT_SECONDS = 3.0
_checked: bool | None = None  # whether the Hub answered, once asked in this process


def declared_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in OFFLINE_VALUES


def reachable() -> bool:
    """One TCP connection to the Hub's host (HF_ENDPOINT, else huggingface.co), asked once a process."""
    global _checked
    if _checked is None:
        where = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
        try:
            socket.create_connection((where.hostname, where.port or (443 if where.scheme == "https" else 80)),
                                     timeout=CONNECT_SECONDS).close()
            _checked = True
        except OSError:
            _checked = False
    return _checked


def offline_unless_reachable() -> bool:
    """Call before anything may reach the Hub; True when it is (or was found) out of reach,
    in which case the libraries now answer from their cache alone, at once."""
    if declared_offline():
        return True
    if reachable():
        return False
    os.environ["HF_HUB_OFFLINE"] = "1"
    for module, name in (("huggingface_hub.constants", "HF_HUB_OFFLINE"), ("datasets.config", "HF_HUB_OFFLINE")):
        if module in sys.modules:  # imported already: they read the variable at import
            setattr(sys.modules[module], name, True)
    return True


def why_the_hub_failed(error: BaseException) -> str:
    """The cause to name in a one-line error about a name the Hub did not give. After this
    process switched the libraries offline (the Hub did not answer), their own message
    ("OfflineModeIsEnabled") would blame a setting the user never made."""
    if _checked is False:  # switched offline by us: whatever the libraries say, the cause is this
        return "the Hub did not answer from this machine, and the name is not in the local cache"
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def out_of_reach_hint() -> str:
    """What an error about the Hub should add when it was out of reach."""
    if _checked is False:
        return " The Hub is out of reach from here: set HF_HUB_OFFLINE=1 to say so up front."
    return ""
