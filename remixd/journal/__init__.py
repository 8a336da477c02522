"""The journal: records, schema, the SQLite backend."""
