"""Developer tools: the local invoke against an embedded AWS, and template helpers. Not deployed."""
