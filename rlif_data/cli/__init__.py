"""The `rlif-data` command line: a thin layer over the library."""
