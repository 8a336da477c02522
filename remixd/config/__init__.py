"""YAML -> validated, frozen objects; credentials in one place."""
