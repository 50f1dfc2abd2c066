"""Booking API tests. The service is a container's code, not part of the refarch package: its folder goes on the
import path here, the way the container runs it (`python -m selfnest_api` from /app)."""

import sys
from pathlib import Path

SERVICE_DIRECTORY = str(Path(__file__).resolve().parents[3] / "services" / "selfnest_api")
if SERVICE_DIRECTORY not in sys.path:
    sys.path.insert(0, SERVICE_DIRECTORY)
