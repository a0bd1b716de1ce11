"""`python -m harness.sandboxes build|status`: works without the engine's CLI (used by CI setup)."""
from ._cli import sandbox_app

sandbox_app(prog_name="python -m harness.sandboxes")
