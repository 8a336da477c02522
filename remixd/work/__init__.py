"""One claimed input: prepare -> submit -> download -> write; limits, retries, budget."""
