"""Persistent state: SQLAlchemy 2 models, Alembic migrations and the functions that query them."""
