"""Alembic migrations of the syncd schema, shipped in the package (`syncd:migrations`)."""
