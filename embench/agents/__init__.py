"""Host-side drivers of the on-device agents."""

from .python_agent import PythonAgent
from .results import STATUSES, SUCCESS, host_result

__all__ = ["STATUSES", "SUCCESS", "PythonAgent", "host_result"]
