"""atheris fuzz targets for every parser: see fuzz/README.md."""
