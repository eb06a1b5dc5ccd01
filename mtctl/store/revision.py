"""The newest migration this mtctl knows (tests/store/test_migrations.py keeps it true).

Its own module, without SQLAlchemy, so the read layer (store/reader.py) can check a store's
schema without importing the rest of store/db.py.
"""

HEAD_REVISION = "0010"
