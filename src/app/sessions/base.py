"""The execution environment's own identity: the function role."""

import boto3


def base_session(region_name: str, profile_name: str | None = None) -> boto3.Session:
    """A session for the caller's own identity, in an explicit region.

    Inside Lambda the credentials come from the environment variables the runtime sets and no
    profile is given. Scripts pass the ``--profile`` their user chose; library code never picks a
    profile itself. Naming the region (rather than trusting whatever default a machine has) makes
    the same code behave the same in Lambda, in tests and on a laptop.
    """
    return boto3.Session(region_name=region_name, profile_name=profile_name)
