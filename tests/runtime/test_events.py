"""The runtime's event stream in-process: stdout in batches, the journal line by line."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "rustle_deploy" / "runtime"
if str(RUNTIME) not in sys.path:
    sys.path.insert(0, str(RUNTIME))

from rustle_runtime import events  # noqa: E402


class _Stream(io.BytesIO):
    """Records every write separately."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes.append(bytes(data))
        return len(data)


def test_stdout_lines_come_in_order_in_batches_journal_at_once_close_writes_the_rest(tmp_path):
    stream = _Stream()
    journal = tmp_path / "sub" / "journal.jsonl"
    emitter = events.Emitter(stream=stream, journal=str(journal))
    emitter.emit({"event": "a"})
    emitter.emit({"event": "b"})
    assert stream.writes == []  # the first line waits for the ones after it
    assert journal.read_text().splitlines() == ['{"event": "a"}', '{"event": "b"}']
    assert journal.stat().st_mode & 0o777 == 0o600
    deadline = time.monotonic() + 5
    while not stream.writes and time.monotonic() < deadline:
        time.sleep(events.BATCH_WINDOW / 5)
    assert stream.writes == [b'{"event": "a"}\n{"event": "b"}\n']  # one write for both
    emitter.emit({"event": "c"})
    emitter.close()
    assert stream.writes[1:] == [b'{"event": "c"}\n']
    assert [json.loads(line)["event"] for line in journal.read_text().splitlines()] == ["a", "b", "c"]
    emitter._flusher.join(5)
    assert not emitter._flusher.is_alive()  # close ends the flushing thread


def test_a_closed_stdout_does_not_stop_the_journal(tmp_path):
    class Closed(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            raise BrokenPipeError

    journal = tmp_path / "journal.jsonl"
    emitter = events.Emitter(stream=Closed(), journal=str(journal))
    emitter.emit({"event": "a"})
    emitter.close()
    assert journal.read_text() == '{"event": "a"}\n'
