"""Lab graders (one module per lab) and the catalog `refarch lab NN` grades from; docs in docs/labs/."""

import os
from pathlib import Path

# jsii starts `node` when aws_cdk is first imported: the project's own Node 22 comes first, as in the Makefile
# (an older system Node prints an end-of-life banner on every run).
os.environ["PATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1] / "node_modules" / ".bin"),
                                      os.environ.get("PATH", "")])
