"""`pulumi preview` / `pulumi up` run this file (Pulumi.yaml: main: stacks/babybloom)."""

from refarch.stacks.babybloom.program import run

run()
