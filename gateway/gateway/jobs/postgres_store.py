"""Jobs in PostgreSQL, shared by every gateway replica (`GATEWAY_JOBS_DATABASE_URL`).

The job folders live on a volume all replicas mount (`GATEWAY_JOBS_DIR`, a ReadWriteMany claim
on Kubernetes). A claim picks its row with `FOR UPDATE SKIP LOCKED`, so replicas claiming at
once take different jobs and never wait on each other. Statements run through psycopg's async
pool, each in its own transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from gateway.jobs.store import INDEXES, LATER_COLUMNS, SqlJobStore, schema
from weavewave_common.errors import ServiceUnavailable

POOL_WAIT_S = 10.0
"""How long a statement waits for a free connection before the caller gets a 503."""
SCHEMA_LOCK = 0x5757_0001
"""Advisory lock key: replicas starting together create the table one after the other."""


class PostgresJobStore(SqlJobStore):
    NOW = "extract(epoch from clock_timestamp())::double precision"
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

    def __init__(self, root: Path, pool: AsyncConnectionPool) -> None:
        super().__init__(root)
        self._pool = pool

    @classmethod
    async def open(
        cls, url: str, root: Path, max_connections: int, timeout_s: float = 30.0
    ) -> PostgresJobStore:
        """Connect (waiting up to `timeout_s` for the server) and create the table if needed."""
        root.mkdir(parents=True, exist_ok=True)
        pool = AsyncConnectionPool(url, min_size=1, max_size=max_connections, open=False)
        await pool.open(wait=True, timeout=timeout_s)
        try:
            async with pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                await conn.execute(schema("DOUBLE PRECISION"))
                for column, kind in LATER_COLUMNS.items():
                    await conn.execute(f"ALTER TABLE jobs ADD COLUMN IF NOT EXISTS {column} {kind}")
                for index in INDEXES:
                    await conn.execute(index)
        except BaseException:
            await pool.close()
            raise
        return cls(root, pool)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; the database being away (down, unreachable, every connection
        busy past the pool's wait) is a 503 for the caller, never a 500."""
        try:
            async with self._pool.connection(timeout=POOL_WAIT_S) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise ServiceUnavailable(
                "The jobs database is unavailable; retry shortly.",
                code="jobs_unavailable",
                retry_after_s=5,
            ) from exc

    async def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        async with self._connection() as conn:
            cursor = await conn.execute(sql.replace("?", "%s"), params)
            return await cursor.fetchall() if cursor.description else []

    async def _count(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        async with self._connection() as conn:
            cursor = await conn.execute(sql.replace("?", "%s"), params)
            return cursor.rowcount
