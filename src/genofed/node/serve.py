"""Run a node: uvicorn serving :func:`create_app`, stopped cleanly by SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import uvicorn

from genofed.errors import InputError
from genofed.node.app import create_app
from genofed.node.settings import load_settings
from genofed.protocol.tls import is_loopback

__all__ = ["serve"]

logger = logging.getLogger(__name__)

STOP = (signal.SIGTERM, signal.SIGINT)


def serve(config: Path, *, insecure: bool = False, log_level: str = "info") -> None:
    """Serve the node configured in ``config`` over HTTPS until SIGTERM or SIGINT.

    Plain HTTP needs ``insecure`` and a loopback host.

    Raises
    ------
    InputError
        If the configuration or the node's files are invalid, or the node has
        no TLS key and plain HTTP was not explicitly allowed on loopback.
    """
    settings = load_settings(config)
    if settings.tls is None and not (insecure and is_loopback(settings.server.host)):
        raise InputError(
            f"{config} has no [tls] section: re-run `genofed node init` to create a key and "
            "certificate, or pass --insecure to serve plain HTTP (loopback only)"
        )
    tls = settings.tls
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.server.host,
            port=settings.server.port,
            log_level=log_level,
            access_log=log_level == "debug",
            timeout_graceful_shutdown=10,
            ssl_certfile=str(tls.certificate) if tls else None,
            ssl_keyfile=str(tls.key) if tls else None,
        )
    )
    # uvicorn re-raises the stop signal once it has shut down; a stop the node
    # asked for is a clean exit, so that last signal is absorbed here.
    stops: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, _: stops.append(number)) for sig in STOP}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info(
        "node %s stopped (%s)",
        settings.node.name,
        ", ".join(signal.Signals(s).name for s in stops) or "server exit",
    )
