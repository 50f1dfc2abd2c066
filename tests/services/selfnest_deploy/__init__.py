"""Deploy-time handlers (services/selfnest_deploy). Lambda imports them as flat modules from the asset root; their
folder goes on the import path here the same way."""

import sys
from pathlib import Path

SERVICE_DIRECTORY = str(Path(__file__).resolve().parents[3] / "services" / "selfnest_deploy")
if SERVICE_DIRECTORY not in sys.path:
    sys.path.insert(0, SERVICE_DIRECTORY)
