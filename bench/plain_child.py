"""One execution environment, timed with nothing hooked: init, then at most one invocation.

Run by :mod:`bench.plain_init` as ``python -I -S bench/plain_child.py HANDLER EVENT PATH...``
in a fresh process: ``PATH...`` go first on ``sys.path`` (the function's code, then the runtime's
packages), ``EVENT`` is a JSON file for the first invocation, or ``-`` for init only.

Unlike ``bench/probe.py`` there is no audit hook, no import finder and no patched botocore: an
instrument costs something per import, and that lands on whichever side imports more. What runs
before the timer starts is the interpreter's own startup and this file's five imports (of which
``-I -S`` startup lacks only ``importlib``, which Lambda's runtime has loaded too; ``gc`` is
built in). Bytecode is never written (``/var/task`` is read-only).

One line goes to the original stdout: ``<init ms> <init CPU ms> <first invocation ms or ->
<modules>``. CPU time is the process's (user and system), far less disturbed than wall time by
whatever else the machine runs. The function's own output goes to stderr, as its logs would.
"""

import gc
import importlib
import os
import sys
import time


def main() -> int:
    handler, event_path, *path = sys.argv[1:]
    channel = os.dup(1)
    os.dup2(2, 1)  # the function's stdout joins its logs
    sys.dont_write_bytecode = True
    sys.path[:0] = path
    module_name, _, function_name = handler.rpartition(".")

    pause_gc = os.environ.get("BENCH_PAUSE_GC") == "1"  # a baseline held as app.cold_start holds

    began, cpu_began = time.perf_counter(), time.process_time()
    if pause_gc:
        gc.disable()
    function = getattr(importlib.import_module(module_name), function_name)
    if pause_gc:
        gc.freeze()
        gc.enable()
    init_ms = (time.perf_counter() - began) * 1000
    init_cpu_ms = (time.process_time() - cpu_began) * 1000
    modules = len(sys.modules)

    first = "-"
    if event_path != "-":
        import json  # after init; boto3 imported it anyway

        with open(event_path, encoding="utf-8") as stream:
            event = json.load(stream)
        context = _Context()
        began = time.perf_counter()
        function(event, context)
        first = f"{(time.perf_counter() - began) * 1000:.3f}"
    os.write(channel, f"{init_ms:.3f} {init_cpu_ms:.3f} {first} {modules}\n".encode())
    return 0


class _Context:
    """What Powertools and the handlers read from Lambda's context, built from Lambda's variables.

    Defined here rather than loaded from ``tools/emulator/lambda_context.py``, whose imports
    (``uuid``, ``dataclasses``) would otherwise be paid before the first invocation's timer starts.
    """

    def __init__(self) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.aws_request_id = os.environ["BENCH_REQUEST_ID"]
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.invoked_function_arn = (
            f"arn:aws:lambda:{os.environ['AWS_REGION']}:123456789012:function:{self.function_name}"
        )
        self._deadline = time.monotonic() + float(os.environ["BENCH_TIMEOUT_SECONDS"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


if __name__ == "__main__":
    sys.exit(main())
