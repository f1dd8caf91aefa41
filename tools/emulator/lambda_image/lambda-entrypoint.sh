#!/bin/sh
# The image's entrypoint, as in AWS's image: the handler is the one argument. Outside Lambda (no
# runtime API) the Runtime Interface Emulator serves the runtime API and starts the bootstrap.
# (`sam local` does not use it: its containers start /var/rapid/aws-lambda-rie themselves.)
if [ $# -ne 1 ]; then
    echo "usage: $0 HANDLER" >&2
    exit 142
fi
export _HANDLER="$1"
if [ -z "${AWS_LAMBDA_RUNTIME_API:-}" ]; then
    exec /var/rapid/aws-lambda-rie /var/runtime/bootstrap
fi
exec /var/runtime/bootstrap
