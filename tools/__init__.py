"""The `refarch` command line and the tools behind the Makefile."""

import os
from pathlib import Path

# jsii starts `node` when aws_cdk is first imported (the Selfnest config imports constructs): the project's own Node 22
# comes first, as in the Makefile — an older system Node prints an end-of-life banner on every run.
os.environ["PATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1] / "node_modules" / ".bin"),
                                      os.environ.get("PATH", "")])
