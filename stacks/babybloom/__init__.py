"""BabyBloom on Azure: the Pulumi program (imported as refarch.stacks.babybloom)."""
