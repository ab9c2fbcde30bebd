"""The archive: a SQLite store of every exported ticket and its views."""
