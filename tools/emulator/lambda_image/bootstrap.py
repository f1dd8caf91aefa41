"""awslambdaric's own entry point, with the function's code first on sys.path, as in Lambda."""

import os
import sys

sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])

from awslambdaric.__main__ import main  # after the path: awslambdaric imports the handler

main(sys.argv)
