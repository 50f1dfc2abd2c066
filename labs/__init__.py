"""Lab graders (one module per lab) and the catalog `refarch lab NN` grades from; docs in docs/labs/."""

import refarch.tools  # noqa: F401 - puts the project's Node first for jsii before any stack is imported
