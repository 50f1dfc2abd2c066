"""Retention periods AWS accepts, kept free of CDK imports so config validation stays fast."""

# CloudWatch Logs PutRetentionPolicy values, in days, in the order aws_logs.RetentionDays lists them.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)
