"""Who is asking, and may they: API keys, roles per project.

(Skeleton: with ``Settings.auth`` off every request may do everything. The real checks are
built behind this same interface.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

ROLES = ("read", "write", "admin")


@dataclasses.dataclass
class Principal:
    """The caller: an API key with roles per project (``*``: every project)."""

    key_id: str | None
    user: str | None
    is_admin: bool
    roles: dict[str, str]

    def can(self, project: str, role: str) -> bool:
        if self.is_admin:
            return True
        held = self.roles.get(project) or self.roles.get("*")
        return held is not None and ROLES.index(held) >= ROLES.index(role)


ANONYMOUS_ADMIN = Principal(key_id=None, user=None, is_admin=True, roles={"*": "admin"})


def principal(request: Request) -> Principal | None:
    """The caller of ``request`` (None: anonymous while authentication is on)."""
    return getattr(request.state, "principal", ANONYMOUS_ADMIN)


def require(request: Request, project: str, role: str) -> Principal:
    """The caller, if it holds ``role`` on ``project``: else 401 (anonymous) or 403. A 403
    never says whether the project exists."""
    who = principal(request)
    if who is None:
        raise HTTPException(401, "an API key is needed: send it as 'Authorization: Bearer <key>'")
    if not who.can(project, role):
        raise HTTPException(403, f"this key may not {role} project {project!r}")
    return who


def middleware(state: Any) -> list:
    """Starlette middleware that sets ``request.state.principal``."""
    return []
