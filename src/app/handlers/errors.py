"""What the handlers refuse on their own, before any operation runs."""


class UnreportableRecordError(ValueError):
    """A record SQS could not have sent: without a string ``messageId`` it cannot be reported."""


class RunLeasedError(Exception):
    """The continuation's run is leased by another invocation: redeliver it later."""
