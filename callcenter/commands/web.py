"""``callcenter web``: the console, served by gunicorn (or Flask's dev server with ``--dev``).

    CALLCENTER_WEB__SECRET_KEY=... callcenter web --host 0.0.0.0 --port 8000 --workers 4
    callcenter web --dev                      # Flask's development server, 127.0.0.1:5000

Production mode refuses to start without ``web.secret_key`` (at least 24 characters); the
session cookie is then ``Secure``, so serve it behind HTTPS (``--behind-proxy 1`` when a
reverse proxy such as nginx sets ``X-Forwarded-For``/``-Proto``: the login rate limit counts
per client address). With no ``redis.url`` the embedded Redis is started or reused (the
listener's, when it runs). An embedded SQLite database is migrated on start; any other
database must be at the current revision already.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import click

logger = logging.getLogger(__name__)


def _default_workers() -> int:
    return max(2, min(8, (os.cpu_count() or 1) + 1))


@click.command("web")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="[8000; --dev: 5000]")
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 64),
    help="gunicorn worker processes [CPUs + 1, 2 to 8].",
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads per worker (live-board streams hold one each).",
)
@click.option(
    "--behind-proxy",
    default=0,
    show_default=True,
    type=click.IntRange(0, 5),
    help="Number of reverse proxies in front whose X-Forwarded-* headers to trust.",
)
@click.option(
    "--plain-http",
    is_flag=True,
    help="No TLS anywhere (a closed network): send the session cookie without Secure.",
)
@click.option("--dev", is_flag=True, help="Flask's development server with the debugger.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None)
def web(
    host: str,
    port: int | None,
    workers: int | None,
    threads: int,
    behind_proxy: int,
    plain_http: bool,
    dev: bool,
    config_path: Path | None,
) -> None:
    """Serve the console (duty board, calls, duty log, violations, reports, admin)."""
    from callcenter.config import ConfigError, RedisConfig, load_config
    from callcenter.embedded_redis import EmbeddedRedisError, redis_for
    from callcenter.listen import SetupError, prepare_database
    from callcenter.web import InsecureConfigError, create_app

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"bad config: {exc}") from exc
    if not dev and not config.web.secret_key:
        raise click.ClickException(
            "web.secret_key is not set: set CALLCENTER_WEB__SECRET_KEY to a long random value "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))'), or use --dev"
        )
    try:
        prepare_database(config.database.url)
        with redis_for(config) as (_client, redis_url):
            config = dataclasses.replace(config, redis=RedisConfig(url=redis_url))
            try:
                app = create_app(config, production=not dev)
            except InsecureConfigError as exc:
                raise click.ClickException(str(exc)) from exc
            if plain_http:
                logger.warning("--plain-http: session cookies travel without TLS")
                app.config["SESSION_COOKIE_SECURE"] = False
            if behind_proxy:
                from werkzeug.middleware.proxy_fix import ProxyFix

                app.wsgi_app = ProxyFix(
                    app.wsgi_app,
                    x_for=behind_proxy,
                    x_proto=behind_proxy,
                    x_host=behind_proxy,
                )
            if dev:
                logger.warning("development server: not for production use")
                app.run(host=host, port=port or 5000, debug=True, use_reloader=False)
            else:
                _serve(app, host, port or 8000, workers or _default_workers(), threads)
    except (SetupError, EmbeddedRedisError) as exc:
        raise click.ClickException(str(exc)) from exc


def _serve(app: Any, host: str, port: int, workers: int, threads: int) -> None:
    """Run gunicorn in this process (threaded workers forked from a loaded app)."""
    from gunicorn.app.base import BaseApplication

    engine = app.extensions["callcenter.engine"]

    def post_fork(_server: Any, _worker: Any) -> None:
        engine.dispose(close=False)  # never share the parent's pooled connections

    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "preload_app": True,
        "timeout": 60,
        "graceful_timeout": 20,
        "accesslog": "-",
        "errorlog": "-",
        "forwarded_allow_ips": "127.0.0.1,::1",
        "post_fork": post_fork,
        "control_socket_disable": True,  # no ~/.gunicorn/gunicorn.ctl shared between runs
    }

    class Console(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    logger.info(
        "console on http://%s:%d with %d worker(s) x %d threads", host, port, workers, threads
    )
    Console().run()
