"""A static HTML view of a dataset (`rlif-data view`): no server, opens from the disk.

`pages` builds the HTML (pure), `assets` holds its stylesheet and script,
`writer` reads the dataset and writes pages and camera frames.
"""
