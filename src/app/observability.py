"""The Powertools logger and metrics every module shares.

``POWERTOOLS_SERVICE_NAME`` and ``POWERTOOLS_METRICS_NAMESPACE`` come from the template, so all
functions log and publish under one service name. Events are never logged whole: they can carry
user data, and request ids are enough to correlate.
"""

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
