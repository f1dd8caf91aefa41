"""The Powertools logger and metrics every module shares.

``POWERTOOLS_SERVICE_NAME`` and ``POWERTOOLS_METRICS_NAMESPACE`` come from the template, so all
functions log and publish under one service name. Events are never logged whole: they can carry
user data, and request ids are enough to correlate.
"""

import logging

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()

# At LogLevel=DEBUG Lambda sets the root logger to DEBUG, and botocore's own debug lines carry
# signed headers: access key ids and session tokens. Those libraries stay at INFO, whatever the
# function's level; our own logger still follows it.
for _library in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_library).setLevel(max(logging.INFO, logging.getLogger(_library).level))


class _WithoutTraceback(logging.Filter):
    """botocore logs a failed advisory refresh with a traceback; we log our own structured line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


logging.getLogger("botocore.credentials").addFilter(_WithoutTraceback())
