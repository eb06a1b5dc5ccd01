"""The declarative PBX file of `mtctl apply` and `mtctl export` (TOML): schema.py (its types
and JSON Schema), load.py (parsing, validation and problem locations, with problems.py) and
render.py (a document as text). Nothing is imported here: each caller takes the part it needs.
"""
