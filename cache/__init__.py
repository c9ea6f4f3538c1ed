"""The content-addressed store: file hashing, artifact files, and their SQLite index.

This package knows files, hashes, the index and (for the shared cache) S3 objects;
it knows nothing about Lambda, Glue or EMR.
"""

# File names inside a cache folder.
INDEX_NAME = "index.sqlite"
# A summary a build derives from the index (packager/builders/noop.py): any index write voids it.
SUMMARY_NAME = "last-build.json"
