"""Reading back what a job built: the raw shard records and the run record in its lineage."""

import json
import os

from rlif_data import schema as sc


def shard_records(directory):
    """Every record of a built dataset, in shard order (the bytes on disk)."""
    from array_record.python import array_record_module

    records = []
    for name in sorted(n for n in os.listdir(directory) if ".array_record-" in n):
        reader = array_record_module.ArrayRecordReader(os.path.join(directory, name))
        records.extend(reader.read_all())
        reader.close()
    return records


def run_info(directory):
    """How the job ran (runner mode and why), from the dataset's lineage."""
    with open(os.path.join(directory, sc.METADATA_FILE)) as f:
        return json.load(f)["lineage"]["run"]
