"""Pulumi ComponentResources for BabyBloom on Azure (imported as refarch.constructs.azure)."""
