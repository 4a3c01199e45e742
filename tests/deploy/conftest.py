"""PostgreSQL and Redis for the deployment tests.

Both services are expected on this machine (CI starts them): PostgreSQL at
127.0.0.1:5432 with trust authentication, Redis at 127.0.0.1:6379. Override with
``BKBN_TEST_PG_HOST``/``_PORT``/``_USER``/``_PASSWORD`` and ``BKBN_TEST_REDIS_URL``.
When a service is down these fixtures raise: the tests fail, they are never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg2
import pytest
import redis
from deploy_support import PgServer, create_database, drop_database


@pytest.fixture(scope="session")
def pg_server() -> PgServer:
    server = PgServer(
        host=os.environ.get("BKBN_TEST_PG_HOST", "127.0.0.1"),
        port=int(os.environ.get("BKBN_TEST_PG_PORT", "5432")),
        user=os.environ.get("BKBN_TEST_PG_USER", "postgres"),
        password=os.environ.get("BKBN_TEST_PG_PASSWORD", ""),
    )
    try:
        server.connect().close()
    except psycopg2.OperationalError as exc:
        raise RuntimeError(
            f"PostgreSQL is required for tests/deploy and is not reachable at "
            f"{server.host}:{server.port}: {exc}"
        ) from exc
    return server


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database, dropped afterwards."""
    name = create_database(pg_server)
    try:
        yield name
    finally:
        drop_database(pg_server, name)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis database of its own (db 11 unless told otherwise); keys are prefixed per test."""
    url = os.environ.get("BKBN_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        raise RuntimeError(
            f"Redis is required for tests/deploy and is not reachable: {exc}"
        ) from exc
    finally:
        client.close()
    return url
