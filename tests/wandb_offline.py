"""Read an offline wandb run back (tests only): the records of its ``run-*.wandb`` file.

The file is a LevelDB-style log: a 7-byte header (":W&B", 0xBEE1, version),
then 32 KiB blocks of chunks (crc32c 4 bytes, length 2, type 1: full, first,
middle, last), each record a ``wandb_internal_pb2.Record`` protobuf. wandb has
no public reader for it (its own is in wandb-core), hence these few lines.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a .wandb file"
    out, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block trailer: zero padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if length == 0 and kind == 0:
            pos += left  # the rest of the block is padding
            continue
        body = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            pending = body
        elif kind == FIRST:
            pending = body
            continue
        elif kind == MIDDLE:
            pending += body
            continue
        elif kind == LAST:
            pending += body
        record = wandb_internal_pb2.Record()
        record.ParseFromString(pending)
        out.append(record)
        pending = b""
    return out


def read_run(run_dir: Path) -> dict:
    """config, history (key -> decoded JSON value), summary, of the offline run in ``run_dir``."""
    (path,) = run_dir.glob("run-*.wandb")
    config, history, summary, run = {}, {}, {}, None
    for record in records(path):
        which = record.WhichOneof("record_type")
        if which == "run":
            run = record.run
            for item in run.config.update:
                config[item.key] = json.loads(item.value_json)
        elif which == "config":
            for item in record.config.update:
                config[item.key] = json.loads(item.value_json)
        elif which == "history":
            for item in record.history.item:
                history[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif which == "summary":
            for item in record.summary.update:
                summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return {"run": run, "config": config, "history": history, "summary": summary}
