"""Selfnest booking API: the web tier's container (therapist directory, booking, cancelling)."""
