"""Run a node: uvicorn serving :func:`create_app`, stopped cleanly by SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import uvicorn

from genofed.node.app import create_app
from genofed.node.settings import load_settings

__all__ = ["serve"]

logger = logging.getLogger(__name__)

STOP = (signal.SIGTERM, signal.SIGINT)


def serve(config: Path, *, log_level: str = "info") -> None:
    """Serve the node configured in ``config`` until SIGTERM or SIGINT.

    Raises
    ------
    InputError
        If the configuration or the node's files are invalid.
    """
    settings = load_settings(config)
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.server.host,
            port=settings.server.port,
            log_level=log_level,
            access_log=log_level == "debug",
            timeout_graceful_shutdown=10,
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
