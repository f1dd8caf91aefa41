"""Items service: the path of a request is the folder order.

* ``handlers/``: Lambda entry points, event in and response out; ``invocation`` bounds an
  invocation's AWS calls, ``http`` and ``sqs`` map failures to answers, ``errors`` holds what
  the handlers refuse themselves.
* ``operations/``: one module per use case (get item, export item, export table), the requests
  they accept (``requests``) and what they refuse (``errors``).
* ``services/``: one module per AWS resource, a session in and typed methods out; ``errors`` is
  AWS failing.
* ``sessions/``: the only place that builds credentials, sessions and clients.
* ``observability``: the logger, the metrics and the log hygiene every function shares.
* ``runtime``: the composition root, building sessions and services once per execution
  environment and handing them to the handlers.

Imports point one way: handlers -> operations -> services -> sessions, as
``tests/unit/test_architecture.py`` enforces.
"""
