"""An uploaded file as a service holds it: one definition for the three services (the gateway's
form parts extend it with their field and sniffed type)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from fastapi import UploadFile


@dataclass
class Upload:
    """An open binary file, the name the client gave it, and its size in bytes (None: not
    known yet)."""

    file: BinaryIO
    filename: str | None
    size: int | None = None

    @classmethod
    def of(cls, upload: UploadFile) -> Upload:
        """FastAPI's upload (a route's `File()` parameter) as ours."""
        return cls(file=upload.file, filename=upload.filename, size=upload.size)
