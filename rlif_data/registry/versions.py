"""Dataset references and semantic versions. Pure.

A reference names a dataset version in one of three forms:

* ``name:1.2.0`` -- an exact version;
* ``name@tag``   -- whatever the tag points at (``latest``, ``round-3``, ...);
* ``name``       -- short for ``name@latest``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Optional

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
LATEST = "latest"
BUMPS = ("major", "minor", "patch")


@dataclasses.dataclass(frozen=True, order=True)
class Version:
    """A semantic version MAJOR.MINOR.PATCH (ordered numerically)."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> "Version":
        """Parse "1.2.0".

        Raises:
          ValueError: not MAJOR.MINOR.PATCH with non-negative integers.
        """
        m = VERSION_RE.match(text or "")
        if not m:
            raise ValueError(f"invalid version {text!r}; expected MAJOR.MINOR.PATCH, e.g. 1.0.0")
        return cls(*(int(g) for g in m.groups()))

    def bump(self, part: str) -> "Version":
        """The next version: "major" -> X+1.0.0, "minor" -> X.Y+1.0, "patch" -> X.Y.Z+1."""
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        if part == "patch":
            return Version(self.major, self.minor, self.patch + 1)
        raise ValueError(f"unknown version part {part!r}; choose one of {BUMPS}")

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


FIRST = Version(1, 0, 0)


@dataclasses.dataclass(frozen=True)
class Ref:
    """A parsed dataset reference: exactly one of `version` and `tag` is set."""

    name: str
    version: Optional[Version] = None
    tag: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.name}:{self.version}" if self.version else f"{self.name}@{self.tag}"


def check_name(name: str) -> str:
    """Return `name` or raise ValueError: lowercase letters, digits, '_' and '-'."""
    if not NAME_RE.match(name or ""):
        raise ValueError(f"invalid dataset name {name!r}; use lowercase letters, digits, '_' "
                         "and '-', starting with a letter")
    return name


def check_tag(tag: str) -> str:
    """Return `tag` or raise ValueError. A tag that parses as a version is refused (ambiguous)."""
    if not TAG_RE.match(tag or "") or VERSION_RE.match(tag):
        raise ValueError(f"invalid tag {tag!r}; use letters, digits, '.', '_' and '-', and not "
                         "a version number")
    return tag


def parse_ref(text: str) -> Ref:
    """Parse ``name:1.2.0``, ``name@tag`` or ``name``.

    Raises:
      ValueError: malformed reference (the message shows the accepted forms).
    """
    text = (text or "").strip()
    forms = "expected name:MAJOR.MINOR.PATCH, name@tag or name"
    if text.count(":") + text.count("@") > 1:
        raise ValueError(f"invalid dataset reference {text!r}; {forms}")
    try:
        if ":" in text:
            name, version = text.split(":")
            return Ref(check_name(name), version=Version.parse(version))
        if "@" in text:
            name, tag = text.split("@")
            return Ref(check_name(name), tag=check_tag(tag))
        return Ref(check_name(text), tag=LATEST)
    except ValueError as exc:
        raise ValueError(f"invalid dataset reference {text!r}: {exc}") from None


def next_version(existing: Iterable[Version], bump: str = "minor") -> Version:
    """The version to publish next: 1.0.0 first, then `bump` of the highest."""
    existing = list(existing)
    return max(existing).bump(bump) if existing else FIRST
