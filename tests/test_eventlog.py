"""The event log round trip: what is written reads back as the same Structs."""

from __future__ import annotations

import pytest

from prose_sim.errors import UsageError
from prose_sim.eventlog import EventLogWriter, read_events
from prose_sim.events import (
    EVENT_TYPES,
    BatchServed,
    BatchStats,
    DemonstrationProduced,
    EpisodeStarted,
    MetricsComputed,
    ModelRequested,
    ModelResponded,
    PreferencesRetrieved,
    RunStarted,
)

BASE = dict(run_id="r", episode_id="e", seq=3, ts=1.5)

SAMPLES = [
    RunStarted(**BASE, scenario_name="s", scenario_digest="d", episodes=2, version="0"),
    EpisodeStarted(
        **BASE,
        task="t",
        framework="plume",
        method="m",
        seed=1,
        personas=["a"],
        instances=2,
        models={"user": "x"},
    ),
    PreferencesRetrieved(**BASE, instance=0, preferences="p", examples=[("doc", "text")]),
    DemonstrationProduced(**BASE, instance=0, text="ünïcode \n line", accepted=True),
    MetricsComputed(**BASE, instance=1, metrics={"a": 0.5, "b": -2.0}),
    ModelRequested(
        **BASE,
        request_id="q",
        instance=0,
        role="agent",
        purpose="draft",
        model="m",
        request_hash="h",
        messages=[{"role": "user", "content": "hi"}],
    ),
    ModelResponded(
        **BASE,
        request_id="q",
        instance=0,
        role="agent",
        purpose="draft",
        text="ok",
        input_tokens=3,
        output_tokens=1,
        latency_s=0.01,
    ),
]


def test_round_trip(tmp_path):
    path = tmp_path / "events.jsonl"
    writer = EventLogWriter(path)
    for event in SAMPLES:
        writer.write(event)
    writer.close()
    assert list(read_events(path)) == SAMPLES
    assert path.read_bytes().count(b"\n") == len(SAMPLES)


def test_events_written_at_once_are_the_same_lines_as_written_one_by_one(tmp_path):
    from prose_sim.eventlog import WRITE_CHUNK

    events = SAMPLES * (WRITE_CHUNK // len(SAMPLES) + 2)  # more than one chunk's worth
    one_by_one, at_once = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    writer = EventLogWriter(one_by_one)
    for event in events:
        writer.write(event)
    writer.close()
    writer = EventLogWriter(at_once)
    writer.write_all(events[:3])
    writer.write_all([])
    writer.write_all(events[3:])
    assert writer.events_written == len(events)
    writer.close()
    assert at_once.read_bytes() == one_by_one.read_bytes()


def test_every_event_kind_has_a_distinct_tag():
    tags = [t.__struct_config__.tag for t in EVENT_TYPES]
    assert len(set(tags)) == len(tags)


def test_appending_writer_keeps_earlier_events(tmp_path):
    path = tmp_path / "events.jsonl"
    for event in SAMPLES[:2]:
        writer = EventLogWriter(path)
        writer.write(event)
        writer.close()
    assert list(read_events(path)) == SAMPLES[:2]


def test_a_foreign_line_is_a_clear_error(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"kind": "nonsense"}\n')
    with pytest.raises(UsageError, match=r"events.jsonl:1: not a prose_sim event"):
        list(read_events(path))


def test_missing_log_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="no event log"):
        list(read_events(tmp_path / "events.jsonl"))


def test_a_flat_batch_served_line_of_an_earlier_version_is_read_nested(tmp_path):
    # how batch_served lines looked before the servers' statistics became one record
    old = (
        b'{"kind":"batch_served","model":"m","size":4,"prompt_tokens":40,"padded_tokens":0,'
        b'"generated_tokens":12,"steps":3,"idle_row_steps":1,"wall_s":0.5,'
        b'"mean_queue_wait_s":0.25,"max_queue_wait_s":0.5,'
        b'"run_id":"r","episode_id":"","seq":0,"ts":1.0}\n'
    )
    path = tmp_path / "events.jsonl"
    path.write_bytes(old)
    (event,) = read_events(path)
    assert isinstance(event, BatchServed)
    assert event.batch == BatchStats(
        size=4,
        prompt_tokens=40,
        generated_tokens=12,
        steps=3,
        idle_row_steps=1,
        wall_s=0.5,
        queue_wait_s=1.0,
        max_queue_wait_s=0.5,
    )


def test_a_line_missing_a_field_is_still_an_error(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"kind":"draft_produced","run_id":"r","episode_id":"e","seq":0,"ts":1}\n')
    with pytest.raises(UsageError, match="not a prose_sim event"):
        list(read_events(path))
