"""The job store the settings ask for: PostgreSQL when a URL is given, else embedded SQLite."""

from __future__ import annotations

from pathlib import Path

from gateway.config import GatewaySettings
from gateway.jobs.store import JobStore


async def open_job_store(settings: GatewaySettings) -> JobStore:
    root = Path(settings.jobs_dir)
    if settings.jobs_database_url:
        from gateway.jobs.postgres_store import PostgresJobStore  # only where it is used

        return await PostgresJobStore.open(
            settings.jobs_database_url, root, settings.jobs_database_connections
        )
    from gateway.jobs.sqlite_store import SqliteJobStore

    return SqliteJobStore(root)
