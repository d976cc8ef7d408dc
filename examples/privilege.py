"""Privilege escalation: an admin action runs after the admin was demoted.

A handler checks that the caller is an admin, awaits the project store and the audit log,
then deletes the project. A role change that demotes the caller to viewer can land while
the handler is awaiting either; the deletion then runs with a role the caller no longer
has. The fixed version holds the user's lock from the role check to the end of the action,
and role changes take the same lock, so a demotion waits for in-flight actions and every
later action sees the new role.
"""

from __future__ import annotations

import asyncio
import collections


class Directory:
    def __init__(self) -> None:
        self.roles: dict[str, str] = {}
        self.locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(
            asyncio.Lock)
        self.projects = {"apollo", "gemini"}
        self.actions: list[tuple[str, str, str]] = []

    def delete_project(self, user: str, project: str) -> None:
        self.actions.append((user, self.roles[user], f"delete {project}"))
        self.projects.discard(project)


async def load_project(project: str) -> None:
    await asyncio.sleep(0)


async def audit(user: str, action: str) -> None:
    await asyncio.sleep(0)


async def authenticate_operator(operator: str) -> None:
    await asyncio.sleep(0)  # token lookup
    await asyncio.sleep(0)  # second factor


async def delete_project(directory: Directory, user: str, project: str) -> bool:
    if directory.roles[user] != "admin":
        return False
    await load_project(project)
    await audit(user, f"delete {project}")
    directory.delete_project(user, project)
    return True


async def delete_project_fixed(directory: Directory, user: str, project: str) -> bool:
    async with directory.locks[user]:
        if directory.roles[user] != "admin":
            return False
        await load_project(project)
        await audit(user, f"delete {project}")
        directory.delete_project(user, project)
        return True


async def demote(directory: Directory, operator: str, user: str) -> None:
    await authenticate_operator(operator)
    directory.roles[user] = "viewer"


async def demote_fixed(directory: Directory, operator: str, user: str) -> None:
    await authenticate_operator(operator)
    async with directory.locks[user]:
        directory.roles[user] = "viewer"


async def role_race() -> None:
    """Mallory is demoted while deleting a project: admin actions need the admin role."""
    directory = Directory()
    directory.roles["mallory"] = "admin"
    await asyncio.gather(delete_project(directory, "mallory", "apollo"),
                         demote(directory, "root", "mallory"))
    assert all(role == "admin" for _, role, _ in directory.actions), (
        f"admin action performed without the admin role: {directory.actions}")


async def role_race_fixed() -> None:
    directory = Directory()
    directory.roles["mallory"] = "admin"
    await asyncio.gather(delete_project_fixed(directory, "mallory", "apollo"),
                         demote_fixed(directory, "root", "mallory"))
    assert all(role == "admin" for _, role, _ in directory.actions), (
        f"admin action performed without the admin role: {directory.actions}")
