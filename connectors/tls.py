"""One TLS client context per process, for every HTTPS client the connectors build.

httpx loads the CA bundle into a new SSL context for each client it makes (36 ms on the 2-core
machine), and python-amazon-sp-api makes two clients (the API's and the LWA token's) for each API
class and marketplace: a command talking to Amazon paid it a dozen times. The context is the
one httpx would build (``httpx.create_ssl_context``: certifi's CA bundle, SSL_CERT_FILE honoured),
made once; an SSL context may be shared by clients and threads.
"""

from __future__ import annotations

import ssl
from functools import cache

import httpx


@cache
def client_context() -> ssl.SSLContext:
    """The process's TLS context for HTTPS clients (certificates verified, as httpx does)."""
    return httpx.create_ssl_context()
