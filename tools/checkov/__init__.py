"""Project checks for checkov (``--external-checks-dir tools/checkov``), run in its own venv."""
