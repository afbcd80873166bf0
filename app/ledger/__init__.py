"""The ledger: keycourier's durable record (SQLAlchemy; SQLite by default, PostgreSQL in production)."""
