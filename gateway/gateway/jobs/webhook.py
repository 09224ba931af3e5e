"""Completion callbacks: the job as JSON, POSTed to the URL given at submission, signed.

`X-WeaveWave-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body with
`GATEWAY_WEBHOOK_SECRET`, so a receiver can check the call came from this service (compare in
constant time). Webhooks are off unless a secret is set. Delivery is tried three times.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging

import httpx

from gateway.jobs.store import JobRecord
from gateway.jobs.view import job_view

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-WeaveWave-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhooks:
    def __init__(self, secret: str, client: httpx.AsyncClient, attempts: int = 3) -> None:
        self._secret = secret
        self._client = client
        self._attempts = attempts
        self._pending: set[asyncio.Task[None]] = set()

    def notify(self, record: JobRecord) -> None:
        """Deliver in the background (the job's end is not held up by the receiver)."""
        if not record.webhook_url:
            return
        task = asyncio.create_task(self._deliver(record.webhook_url, record))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, url: str, record: JobRecord) -> None:
        body = job_view(record).model_dump_json().encode()
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(self._secret, body)}
        for attempt in range(self._attempts):
            try:
                response = await self._client.post(url, content=body, headers=headers)
                if response.is_success:
                    return
                logger.warning("webhook for job %s got %d", record.id, response.status_code)
            except httpx.HTTPError as exc:
                logger.warning("webhook for job %s failed (%s)", record.id, type(exc).__name__)
            await asyncio.sleep(2**attempt)
        logger.error("webhook for job %s not delivered after %d tries", record.id, self._attempts)
