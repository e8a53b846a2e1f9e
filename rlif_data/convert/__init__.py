"""Datasets to and from the formats other tools read: LeRobotDataset (v3.0) and Minari (HDF5).

* `rlif_data.convert.lerobot_layout` (pure): the LeRobot v3.0 file layout and
  how rlif-data episodes become LeRobot frames and back;
* `rlif_data.convert.lerobot`: writes a LeRobotDataset directory with
  pyarrow, and reads one (ours or LeRobot's own) as RLDS episodes;
* `rlif_data.convert.minari_fields` (pure): intervention fields and episode
  metadata as Minari per-step infos and episode attributes;
* `rlif_data.convert.minari_writer`: writes a Minari dataset with Minari's
  own storage writer;
* `rlif_data.convert.export`: ``rlif-data convert REF --to lerobot|minari``.

The way back from Minari is `rlif_data.sources.minari_reader` (``ingest-minari``),
which reads the intervention fields this package writes.
"""
