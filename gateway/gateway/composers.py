"""The composers the gateway knows, by name: one model each (`GATEWAY_COMPOSERS`), the first the
default. A request names one with its `model` field; an unknown name is a 422 that lists them."""

from __future__ import annotations

from gateway.upstream import ComposerClient
from weavewave_common.errors import InvalidInput
from weavewave_common.protocol import ComposerCard

DEFAULT_NAME = "default"
"""The one composer's name when `GATEWAY_COMPOSERS` is not set."""


def parse_composers(entries: list[str]) -> dict[str, str]:
    """`name=url` entries -> {name: url}, in order; a malformed or repeated entry is refused
    at start-up with the reason."""
    named: dict[str, str] = {}
    for entry in entries:
        name, sep, url = (part.strip() for part in entry.partition("="))
        if not sep or not name or not url:
            raise ValueError(f"GATEWAY_COMPOSERS: {entry!r} is not name=url.")
        if name in named:
            raise ValueError(f"GATEWAY_COMPOSERS: {name!r} is named twice.")
        named[name] = url
    return named


class Composers:
    """The named composer clients; `pick(None)` is the first."""

    def __init__(self, clients: dict[str, ComposerClient]) -> None:
        if not clients:
            raise ValueError("at least one composer")
        self._clients = clients

    @property
    def names(self) -> list[str]:
        return list(self._clients)

    @property
    def default(self) -> str:
        return self.names[0]

    def pick(self, name: str | None) -> ComposerClient:
        """The composer called `name` (None or empty: the default); 422 for an unknown one."""
        if not name:
            return self._clients[self.default]
        try:
            return self._clients[name]
        except KeyError:
            raise InvalidInput(
                f"model: {name!r} is not served; one of {', '.join(self.names)}.",
                code="unknown_model",
            ) from None

    async def cards(self) -> dict[str, ComposerCard | None]:
        """Each composer's model card (None where it does not answer now)."""
        return {name: await client.model.get() for name, client in self._clients.items()}

    async def singers(self) -> list[str]:
        """The names of the composers whose model sings."""
        cards = await self.cards()
        return [name for name, card in cards.items() if card is not None and card.sings]

    async def section_followers(self) -> list[str]:
        """The names of the composers whose model follows a video's sections."""
        cards = await self.cards()
        return [name for name, card in cards.items() if card is not None and card.follows_sections]
