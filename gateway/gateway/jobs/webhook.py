"""Completion callbacks: the job as JSON, POSTed to the URL given at submission, signed.

`X-WeaveWave-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body with
`GATEWAY_WEBHOOK_SECRET`, so a receiver can check the call came from this service (compare in
constant time). Webhooks are off unless a secret is set. Delivery is tried three times, only
to a destination `DestinationPolicy` allows (checked at submission and again before each try).
At shutdown, deliveries still under way get a short grace to finish, then are cancelled, before
their client is closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging

import httpx

from gateway.jobs.destinations import DestinationPolicy, DestinationRefused
from gateway.jobs.store import JobRecord
from gateway.jobs.view import job_view

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-WeaveWave-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhooks:
    def __init__(
        self,
        secret: str,
        client: httpx.AsyncClient,
        policy: DestinationPolicy,
        attempts: int = 3,
        retry_base_s: float = 1.0,
    ) -> None:
        self._secret = secret
        self._client = client
        self._policy = policy
        self._attempts = attempts
        self._retry_base_s = retry_base_s
        self._pending: set[asyncio.Task[None]] = set()

    async def check(self, url: str) -> None:
        """Refuse (422) a URL the gateway would not call."""
        await self._policy.check(url)

    async def drain(self, grace_s: float) -> None:
        """Let deliveries under way finish for up to `grace_s`, then cancel the rest (call
        before closing the client: a delivery must not find it closed under it)."""
        if not self._pending:
            return
        pending = set(self._pending)
        _, late = await asyncio.wait(pending, timeout=grace_s)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
            logger.warning("%d webhook deliveries cancelled at shutdown", len(late))

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
                destination = await self._policy.check(url)  # again: names can move
            except DestinationRefused as exc:
                logger.error("webhook for job %s refused: %s", record.id, exc.message)
                return
            try:
                # the answer's status is all that is read: its body (any size) is never fetched
                async with self._client.stream(
                    "POST",
                    destination.url,
                    content=body,
                    headers={**headers, "host": destination.host_header},
                    extensions={"sni_hostname": destination.host},
                    follow_redirects=False,
                ) as response:
                    status = response.status_code
                if 200 <= status < 300:
                    return
                logger.warning("webhook for job %s got %d", record.id, status)
            except httpx.HTTPError as exc:
                logger.warning("webhook for job %s failed (%s)", record.id, type(exc).__name__)
            await asyncio.sleep(self._retry_base_s * 2**attempt)
        logger.error("webhook for job %s not delivered after %d tries", record.id, self._attempts)
