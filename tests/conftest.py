"""Suite-wide settings: jax on CPU (quietly), and deterministic hypothesis profiles.

Profiles (pick with the HYPOTHESIS_PROFILE environment variable):
- "default": modest example counts, no deadline (jax tracing times vary); derandomized when
  CI=true so a CI run is reproducible.
- "ci": "default", derandomized.
- "thorough": many more examples, for a deliberate hunt.
"""

from __future__ import annotations

import os

# Before anything imports jax: the tests only need shapes and small CPU computations.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from hypothesis import HealthCheck, settings  # noqa: E402

_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_COMMON = {"deadline": None, "suppress_health_check": (HealthCheck.too_slow,)}

settings.register_profile("default", max_examples=30, derandomize=_CI, **_COMMON)
settings.register_profile("ci", max_examples=30, derandomize=True, **_COMMON)
settings.register_profile("thorough", max_examples=500, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if _CI else "default"))
