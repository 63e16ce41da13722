"""SQLite storage: one file, one writer connection, migrations recorded in a table."""
