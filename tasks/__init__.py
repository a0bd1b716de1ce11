"""The benchmark suites. Importing this package registers each suite with the task registry
(it is the `builtin` entry point of the `harness.tasks` group)."""
from harness.tasks import cipherbank  # noqa: F401
from harness.tasks import aegis, correct_error, who_and_when  # noqa: F401
from harness.tasks import ineqmath  # noqa: F401
from harness.tasks import evalplus  # noqa: F401
from harness.tasks import geojseval  # noqa: F401
from harness.tasks import mmsearch_plus  # noqa: F401
