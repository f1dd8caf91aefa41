"""``make bench``: every performance figure of the functions against a baseline measured in the
same run (``bench/run.py`` says what runs when; ``bench/report.py`` what each figure means)."""
