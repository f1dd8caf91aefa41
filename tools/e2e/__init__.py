"""End-to-end tests' targets: the same scenarios against the local stack or a deployed one."""
