"""The content-addressed store: file hashing, artifact files, and their SQLite index.

This package knows files, hashes, the index and (for the shared cache) S3 objects;
it knows nothing about Lambda, Glue or EMR.
"""
