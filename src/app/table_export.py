"""Export the whole items table to S3 as gzip-compressed JSON Lines, in flat memory, resumably.

The table is read as a parallel scan (one segment per worker thread); each segment streams into
its own S3 multipart upload, ``<prefix>table/<run_id>/segment-<i>-of-<n>.jsonl.gz``. A segment
holds at most one part (``part_bytes`` of compressed output) and one scan page in memory, however
large the table is.

Each part is a complete gzip member, and concatenated gzip members are a valid gzip file, so the
finished object decompresses with any gzip reader. After every uploaded part the segment's
progress (upload id, part ETags and the scan key after the part's last item) is saved in the runs
table. When the invocation runs short of time, the segments stop at a page boundary; items read
since the last part are simply read again by the next invocation, which resumes from the saved
keys. Nothing is written twice and nothing is skipped.
"""

import json
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from app.services import (
    ContinuationQueue,
    ExportRun,
    ExportRunsTable,
    ExportsBucket,
    Item,
    ItemsTable,
    SegmentProgress,
)

SEGMENTS = 4
MIN_PART_BYTES = 5 * 1024 * 1024
"""S3's minimum size for every part but the last."""
GZIP_CONTENT_TYPE = "application/gzip"


@dataclass(frozen=True)
class TableExportOutcome:
    run_id: str
    status: str
    """``complete``, ``continuing`` (a continuation was queued) or ``busy`` (leased elsewhere)."""
    items: int = 0
    manifest_key: str | None = None


class _GzipPart:
    """Compressed JSON Lines for one part: a gzip member of its own."""

    def __init__(self) -> None:
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: gzip container
        self._chunks: list[bytes] = []
        self.size = 0

    def add(self, item: Item) -> None:
        line = json.dumps(item, separators=(",", ":"), sort_keys=True).encode() + b"\n"
        chunk = self._compressor.compress(line)
        if chunk:
            self._chunks.append(chunk)
            self.size += len(chunk)

    def close(self) -> bytes:
        self._chunks.append(self._compressor.flush())
        return b"".join(self._chunks)


@dataclass(frozen=True)
class _Segment:
    """What one worker needs to export one segment."""

    run_id: str
    index: int
    total: int
    owner: str
    items: ItemsTable
    exports: ExportsBucket
    runs: ExportRunsTable
    out_of_time: Callable[[], bool]
    part_bytes: int

    def export(self, progress: SegmentProgress) -> SegmentProgress:
        """Carry the segment as far as time allows; returns its progress as saved."""
        if progress.done:
            return progress
        if progress.upload_id is None:
            progress = replace(
                progress, upload_id=self.exports.start_upload(progress.key, GZIP_CONTENT_TYPE)
            )
            self._save(progress)
        part, pending = _GzipPart(), 0
        pages = self.items.scan_pages(self.index, self.total, progress.resume_key)
        while not self.out_of_time():  # else what ``part`` holds is read again on resume
            page = next(pages)
            for item in page.items:
                part.add(item)
            pending += len(page.items)
            last_page = page.next_key is None
            if last_page or part.size >= self.part_bytes:
                progress = self._upload(progress, part.close(), pending, page.next_key)
                part, pending = _GzipPart(), 0
            if last_page:
                return self._complete(progress)
        return progress

    def _upload(
        self, progress: SegmentProgress, body: bytes, items: int, next_key: dict[str, object] | None
    ) -> SegmentProgress:
        assert progress.upload_id is not None  # noqa: S101 - set before the first page
        etag = self.exports.upload_part(
            progress.key, progress.upload_id, len(progress.etags) + 1, body
        )
        progress = replace(
            progress,
            etags=[*progress.etags, etag],
            items=progress.items + items,
            resume_key=next_key,
        )
        self._save(progress)
        return progress

    def _complete(self, progress: SegmentProgress) -> SegmentProgress:
        assert progress.upload_id is not None  # noqa: S101 - set before the first page
        # False means the object exists: an earlier invocation completed it and then lost its
        # lease before saving. Its parts are the same parts; the object is left as it is.
        self.exports.complete_upload(progress.key, progress.upload_id, progress.etags)
        progress = replace(progress, done=True)
        self._save(progress)
        return progress

    def _save(self, progress: SegmentProgress) -> None:
        self.runs.save_segment(self.run_id, self.owner, self.index, progress)


def new_run(run_id: str, exports: ExportsBucket, segments: int = SEGMENTS) -> ExportRun:
    keys = [
        f"{exports.prefix}table/{run_id}/segment-{i}-of-{segments}.jsonl.gz"
        for i in range(segments)
    ]
    return ExportRun(run_id=run_id, segments=[SegmentProgress(key=key) for key in keys])


@dataclass(frozen=True)
class TableExporter:
    """Everything a table export touches, built once per execution environment."""

    items: ItemsTable
    exports: ExportsBucket
    runs: ExportRunsTable
    continuations: ContinuationQueue
    workers: Executor

    def run(
        self,
        run_id: str,
        owner: str,
        *,
        seconds_left: Callable[[], float],
        lease_seconds: int,
        part_bytes: int = MIN_PART_BYTES,
        segments: int = SEGMENTS,
    ) -> TableExportOutcome:
        """Start or resume run ``run_id``; queue a continuation if time runs out first.

        ``seconds_left`` is the time the invocation may still spend scanning; ``owner`` (the
        request id) holds the run's lease for ``lease_seconds``.
        """
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"S3 needs parts of at least {MIN_PART_BYTES} bytes")
        now = int(time.time())
        self.runs.create(new_run(run_id, self.exports, segments), now)
        run = self.runs.claim(run_id, owner, now, lease_seconds)
        if run is None:
            return TableExportOutcome(run_id, "busy")
        exporters = [
            _Segment(
                run_id=run_id,
                index=index,
                total=len(run.segments),
                owner=owner,
                items=self.items,
                exports=self.exports,
                runs=self.runs,
                out_of_time=lambda: seconds_left() <= 0,
                part_bytes=part_bytes,
            )
            for index in range(len(run.segments))
        ]
        run = replace(
            run, segments=list(self.workers.map(_Segment.export, exporters, run.segments))
        )
        if not all(segment.done for segment in run.segments):
            self.continuations.send(run_id)
            self.runs.release(run_id, owner)
            return TableExportOutcome(run_id, "continuing", run.items)
        manifest_key = self._write_manifest(run)
        self.runs.finish(run_id, owner, manifest_key)
        return TableExportOutcome(run_id, "complete", run.items, manifest_key)

    def _write_manifest(self, run: ExportRun) -> str:
        key = f"{self.exports.prefix}table/{run.run_id}/manifest.json"
        manifest = {
            "run_id": run.run_id,
            "table": self.items.table_name,
            "completed_at": datetime.now(UTC).isoformat(),
            "items": run.items,
            "objects": [
                {"key": segment.key, "items": segment.items, "parts": len(segment.etags)}
                for segment in run.segments
            ],
        }
        self.exports.put_new(key, json.dumps(manifest, indent=2).encode(), "application/json")
        return key
