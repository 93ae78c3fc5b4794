"""What every part of the plugin shares and the argument parser needs before any command runs:
resource names, the kinds' short names, and the errors commands raise.

It imports nothing beyond the standard library and the package's own names (group, version,
plurals: :mod:`rollwise`), so that ``--help``, a bad argument and the
parser itself cost no more than Python's own start-up; each command imports the rest (the
``kubernetes`` client, the core's models) when it runs.
"""

from __future__ import annotations

from rollwise import GROUP, MODELRELEASES, ROLLOUTS, VERSION

#: The kind of each resource, as events name it, and the word messages use for it.
KINDS = {ROLLOUTS: "Rollout", MODELRELEASES: "ModelRelease"}
KIND_WORDS = {ROLLOUTS: "rollout", MODELRELEASES: "modelrelease"}

#: The names the plugin accepts for each kind, as kubectl accepts a resource's names.
ROLLOUT_NAMES = ("rollout", "rollouts", "rwr")
RELEASE_NAMES = ("modelrelease", "modelreleases", "mr", "mrel")

#: What an override decides (``kubectl rollwise override ... --decision``).
OVERRIDE_DECISIONS = ("promote", "hold", "rollback")


class CliError(Exception):
    """A failure the user reads as one line (``error: ...``) on stderr, exit code 1."""


class Refused(CliError):
    """The API server refused a write; the message is its own (an admission webhook's)."""


class NotServed(CliError):
    """The API server does not serve the resource type (its CRD is not installed)."""


__all__ = [
    "GROUP",
    "KINDS",
    "KIND_WORDS",
    "MODELRELEASES",
    "OVERRIDE_DECISIONS",
    "RELEASE_NAMES",
    "ROLLOUTS",
    "ROLLOUT_NAMES",
    "VERSION",
    "CliError",
    "NotServed",
    "Refused",
]
