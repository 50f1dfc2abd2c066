"""BabyBloom's backend logic, kept apart from function_app.py so the Pulumi program can share the setting names."""
