"""The `rlif-data` command line and the main job: the top layer.

It imports the library (`rlif_data`) and the packages built on it
(`pipelines`, `robot`, `trainers`); none of them imports this package.
"""
