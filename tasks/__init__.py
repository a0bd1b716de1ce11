"""The benchmark suites. Importing this package registers each suite with the task registry
(it is the `builtin` entry point of the `harness.tasks` group)."""
from harness.tasks import cipherbank  # noqa: F401
