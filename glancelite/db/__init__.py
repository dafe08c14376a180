"""Database: SQLAlchemy models (models.py), engine setup and Alembic migrations."""
