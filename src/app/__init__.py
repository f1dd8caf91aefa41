"""Items service: Lambda handlers -> services -> sessions.

Imports point one way only: ``handlers`` may import ``runtime``, ``services`` and ``requests``;
``services`` import ``sessions``; ``sessions`` import nothing of ours.
"""
