"""The garbage collector held off while a cold start builds what it keeps, then kept off it.

Init builds tens of thousands of objects (botocore's models and handlers, Powertools, the clients)
that live as long as the execution environment, and almost none of them are garbage: 407 cyclic
objects out of about 67,000 after GetItemFunction's init, measured. The collector still walks
them dozens of times while init runs (60 to 100 ms of a 500 to 650 ms init on the machines this
was measured on), and once they reach its oldest generation it walks them all again in a full
collection (over 100 ms) during some later, warm invocation.

So :func:`pause_for_init` (run by ``app.handlers``, before a handler module's first import) stops
the collector, and :func:`end_init` (run by ``app.runtime.at_init``, the last statement of every
handler module) freezes what init built into the permanent generation, never walked again (the
few cycles of garbage among it are kept, a few kilobytes), and starts the collector again.

Only when Lambda's reserved ``_HANDLER`` variable names a module of ``app.handlers``: that is
Lambda (and ``sam local``, and the project's local runner) importing the handler. Tests and tools
that import the package keep their collector as it was.
"""

import gc
import os


class _Pause:
    active = False


def pause_for_init() -> None:
    if os.environ.get("_HANDLER", "").startswith("app.handlers.") and gc.isenabled():
        gc.disable()
        _Pause.active = True


def end_init() -> None:
    if _Pause.active:
        gc.freeze()
        gc.enable()
        _Pause.active = False
