"""What lands on disk: atomic writes, output names and sidecars, disposal."""
