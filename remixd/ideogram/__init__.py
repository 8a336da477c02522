"""Ideogram's API: the route table, request and response schemas, the client, downloads."""
