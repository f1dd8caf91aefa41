"""Lambda entry points: event in, response out.

Each module has a ``handle(event, context, *, <services>)`` that tests call with services built on
moto-backed sessions, and a ``lambda_handler(event, context)`` (the template's ``Handler``) that
only passes in the services built once at init by :mod:`app.runtime`.
"""

from app.cold_start import pause_for_init

pause_for_init()  # before the handler module imports boto3 and Powertools: app.cold_start
