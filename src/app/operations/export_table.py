"""The whole items table to S3 as gzip JSON Lines, in flat memory, resumably.

A parallel scan streams each segment into its own object (a multipart upload once it outgrows one
part, one conditional put while it does not), holding one page in memory and the part being
compressed on disk, so memory stays flat however large the table. Parts are whole gzip members, so
the object is one valid gzip file. Each uploaded part's progress is saved in the runs table, so a
run that runs short of time resumes from the saved keys: nothing written twice, nothing skipped.

A stopping run gives its lease back before queueing its continuation, so the continuation always
finds the run free; a failing segment stops the others before the invocation raises; a segment
whose upload S3 forgot starts again with a new one. The README's "whole-table export" has the rest.

Fanned out (``fan_out``), a run is one message per segment on the continuation queue instead of
threads in one invocation: each segment runs in an invocation of its own, under its own lease,
resumes from its own continuation, and the last segment to finish writes the manifest.
"""

import json
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Executor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import IO

from app.operations.read_limit import ReadLimit
from app.services import (
    ContinuationQueue,
    ExportRun,
    ExportRunsTable,
    ExportsBucket,
    Item,
    ItemsTable,
    SegmentProgress,
    UnknownSegmentError,
    UploadGoneError,
)
from app.services.exact_json import dumps

SEGMENTS = 4
MIN_PART_BYTES = 5 * 1024 * 1024
"""S3's minimum size for every part but the last."""
PAGE_ITEMS = 500
"""Items per scan page: what bounds the memory a segment holds, whatever the table's size."""
GZIP_CONTENT_TYPE = "application/gzip"


@dataclass(frozen=True)
class TableExportOutcome:
    run_id: str
    status: str
    """``complete`` (now or by an earlier invocation), ``continuing`` (the lease released and a
    continuation queued) or ``busy`` (leased by another invocation); fanned out, also
    ``fanned-out`` (the segments' messages sent), ``running`` (sent by an earlier trigger),
    ``segment-done`` (this segment finished, others have not) and ``unknown`` (no such segment)."""
    items: int = 0
    manifest_key: str | None = None
    segment: int | None = None
    """The segment a fanned-out invocation worked on."""
    started_at: int | None = field(default=None, compare=False)
    """When the run's first invocation claimed it (epoch seconds): how long a run has been
    continuing is what its alarm watches. Not part of the handler's answer."""


class _GzipPart:
    """Compressed JSON Lines for one part, a gzip member of its own, spooled to local disk.

    In memory a part would grow with the table until it reaches ``part_bytes`` (5 MiB a segment);
    on disk (``/tmp``: Lambda's ephemeral storage) it costs no memory at all, and botocore streams
    it to S3 from the file.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.reset()

    def add(self, items: list[Item]) -> None:
        for item in items:
            line = dumps(item).encode() + b"\n"  # numbers exact, unlike json.dumps
            self.size += self._file.write(self._compressor.compress(line))
        self.items += len(items)

    def body(self) -> IO[bytes]:
        """The finished member, rewound for reading; add nothing more until :meth:`reset`."""
        self._file.write(self._compressor.flush())
        self._file.seek(0)
        return self._file

    def reset(self) -> None:
        self._file.seek(0)
        self._file.truncate()
        # wbits 31: a gzip container; the level is zlib's default (6).
        self._compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 31)
        self.size = 0
        self.items = 0

    def close(self) -> None:
        self._file.close()


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
    page_items: int
    stop: threading.Event
    """Set when any segment of the invocation fails: the others stop at their next safe point."""
    read_limit: ReadLimit = field(default_factory=ReadLimit)
    segment_lease: bool = False
    """Saved under the segment's own lease (fanned out), not the run's."""

    def export(self, progress: SegmentProgress) -> SegmentProgress:
        """Carry the segment as far as time allows; returns its progress, saved (or, for a
        segment written in one put, to be saved with the run's last write)."""
        try:
            try:
                return self._export(progress)
            except UploadGoneError:
                # Its parts went with it: nothing of the segment is stored, so it starts again
                # from its first item (once: an upload gone twice in an invocation is a fault).
                progress = SegmentProgress(key=progress.key)
                self._save(progress)
                return self._export(progress)
        except BaseException:
            self.stop.set()
            raise

    def _export(self, progress: SegmentProgress) -> SegmentProgress:
        if progress.done or self.stop.is_set():
            return progress
        if progress.scanned:  # an invocation uploaded the last part, then stopped
            return self._complete(progress)
        pages = self.items.scan_pages(self.index, self.total, progress.resume_key, self.page_items)
        part = _GzipPart()
        try:
            # Stopping between pages, or before a part is written, loses nothing: what ``part``
            # holds is read again on resume.
            while not (self.stop.is_set() or self.out_of_time()):
                page = next(pages)
                self.read_limit.spend(page.read_units)
                part.add(page.items)
                next_key = page.next_key
                del page  # so that the next one is read with this one freed
                if next_key is not None and part.size < self.part_bytes:
                    continue
                if self.stop.is_set():
                    break
                if next_key is None:
                    return self._finish(progress, part)
                progress = self._upload(progress, part, next_key)
            return progress
        finally:
            part.close()

    def _upload(
        self, progress: SegmentProgress, part: _GzipPart, next_key: dict[str, object] | None
    ) -> SegmentProgress:
        """Upload ``part`` (the first one starts the upload) and save how far the segment got.

        The upload id is saved with the first part's ETag, not before: an upload whose id was
        never saved holds no part anyone counts on, and the bucket's lifecycle rule aborts it.
        """
        upload_id = progress.upload_id or self.exports.start_upload(progress.key, GZIP_CONTENT_TYPE)
        etag = self.exports.upload_part(
            progress.key, upload_id, len(progress.etags) + 1, part.body()
        )
        progress = replace(
            progress,
            upload_id=upload_id,
            etags=[*progress.etags, etag],
            items=progress.items + part.items,
            resume_key=next_key,
            scanned=next_key is None,
        )
        part.reset()
        self._save(progress)
        return progress

    def _finish(self, progress: SegmentProgress, part: _GzipPart) -> SegmentProgress:
        """Write the segment's last part: as the whole object when it is also the first."""
        if progress.upload_id is None:
            # False means the object exists: an earlier invocation wrote it and stopped before
            # saving so. It holds the same items; it is left as it is. Saving this segment waits
            # for the run's own last write (finish or release): were this invocation to die
            # first, the next would only read one small segment again.
            self.exports.put_new(progress.key, part.body(), GZIP_CONTENT_TYPE)
            return replace(progress, items=part.items, done=True)
        return self._complete(self._upload(progress, part, None))

    def _complete(self, progress: SegmentProgress) -> SegmentProgress:
        """Assemble the uploaded parts; saved at once, as a completed upload takes no more."""
        assert progress.upload_id is not None  # noqa: S101 - every part is uploaded
        # The object may exist already: this upload, completed by an invocation that stopped
        # before saving so (complete_upload then leaves it as it is).
        self.exports.complete_upload(progress.key, progress.upload_id, progress.etags)
        progress = replace(progress, done=True)
        self._save(progress)
        return progress

    def _save(self, progress: SegmentProgress) -> None:
        self.runs.save_segment(
            self.run_id, self.owner, self.index, progress, segment_lease=self.segment_lease
        )


def _checked_part_bytes(part_bytes: int) -> int:
    if part_bytes < MIN_PART_BYTES:
        raise ValueError(f"S3 needs parts of at least {MIN_PART_BYTES} bytes")
    return part_bytes


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
    segments: int = SEGMENTS
    fan_out: bool = False
    """One invocation per segment (:meth:`start`, :meth:`run_segment`), not a thread each."""
    read_limit: Callable[[], ReadLimit] = ReadLimit
    """Builds each segment's read limit (``read_limit.read_limit``): none by default."""
    part_bytes: int = MIN_PART_BYTES
    """Parts are uploaded once they reach this (S3's minimum is the smallest allowed)."""
    page_items: int = PAGE_ITEMS

    def run(
        self,
        run_id: str,
        owner: str,
        *,
        seconds_left: Callable[[], float],
        lease_seconds: int,
        part_bytes: int | None = None,
        segments: int | None = None,
    ) -> TableExportOutcome:
        """Start or resume run ``run_id``; queue a continuation if time runs out first.

        ``seconds_left`` is the time the invocation may still spend scanning; ``owner`` (the
        request id) holds the run's lease for ``lease_seconds``.
        """
        part_bytes = _checked_part_bytes(part_bytes or self.part_bytes)
        run = self.runs.claim(
            new_run(run_id, self.exports, segments or self.segments),
            owner,
            int(time.time()),
            lease_seconds,
        )
        if run is None:
            return TableExportOutcome(run_id, "busy")
        if run.complete:  # a duplicate trigger or continuation of a finished run
            return TableExportOutcome(run_id, "complete", run.items, run.manifest_key)
        stop = threading.Event()
        exporters = [
            self._segment(
                run,
                index,
                owner=owner,
                seconds_left=seconds_left,
                part_bytes=part_bytes,
                stop=stop,
            )
            for index in range(len(run.segments))
        ]
        # Every segment ends before the invocation goes on (or raises the first failure).
        futures = [
            self.workers.submit(exporter.export, progress)
            for exporter, progress in zip(exporters, run.segments, strict=True)
        ]
        wait(futures)
        run = replace(run, segments=[future.result() for future in futures])
        if not all(segment.done for segment in run.segments):
            # Released first: the continuation must never find the lease still held (it would
            # be answered "busy"). A crash between the two leaves the run free and this
            # invocation's own trigger to come back (SQS visibility timeout, Lambda's retries).
            self.runs.release(run_id, owner, run.segments)
            self.continuations.send(run_id)
            return TableExportOutcome(run_id, "continuing", run.items, started_at=run.created_at)
        manifest_key = self._write_manifest(run)
        self.runs.finish(run_id, owner, manifest_key, run.segments)
        return TableExportOutcome(run_id, "complete", run.items, manifest_key)

    # --- Fanned out: a message, then an invocation, per segment -----------------------------------

    def start(self, run_id: str, *, resend: bool = False) -> TableExportOutcome:
        """Record run ``run_id`` and send one message per segment to the continuation queue.

        Sent once: a second trigger of a dispatched run sends nothing (its messages would only
        find their segments leased, again and again); ``resend`` (an operator resuming the run)
        sends one for each unfinished segment, or, all finished, one for the manifest. Dying
        before the run is marked dispatched sends them again on the retry: harmless duplicates.
        """
        segments = self.segments
        run = self.runs.open_fan_out(new_run(run_id, self.exports, segments), int(time.time()))
        if run is None:  # the id is an in-process run's
            return TableExportOutcome(run_id, "busy")
        if run.complete:
            return TableExportOutcome(run_id, "complete", run.items, run.manifest_key)
        if run.dispatched and not resend:
            return TableExportOutcome(run_id, "running", run.items, started_at=run.created_at)
        unfinished = [i for i, segment in enumerate(run.segments) if i not in run.finished]
        for index in unfinished or [0]:
            self.continuations.send_segment(run_id, index)
        if not run.dispatched:
            self.runs.mark_dispatched(run_id)
        return TableExportOutcome(run_id, "fanned-out", run.items, started_at=run.created_at)

    def run_segment(
        self,
        run_id: str,
        index: int,
        owner: str,
        *,
        seconds_left: Callable[[], float],
        lease_seconds: int,
        part_bytes: int | None = None,
    ) -> TableExportOutcome:
        """Carry segment ``index`` of a fanned-out run on; the last segment to finish (or a
        redelivery of its message, if it died first) writes the manifest.

        Each step is safe to die after: the segment's message comes back and resumes from the
        last checkpoint; a finished segment's message only checks whether the run is complete.
        """
        part_bytes = _checked_part_bytes(part_bytes or self.part_bytes)
        try:
            run = self.runs.claim_segment(run_id, index, owner, int(time.time()), lease_seconds)
        except UnknownSegmentError:
            return TableExportOutcome(run_id, "unknown", segment=index)
        if run is None:
            return TableExportOutcome(run_id, "busy", segment=index)
        if run.complete:
            return TableExportOutcome(run_id, "complete", run.items, run.manifest_key, index)
        segment = self._segment(
            run,
            index,
            owner=owner,
            seconds_left=seconds_left,
            part_bytes=part_bytes,
            stop=threading.Event(),
            segment_lease=True,
        )
        progress = segment.export(run.segments[index])
        if not progress.done:
            # As in ``run``: released first, so the continuation never finds the segment leased.
            self.runs.release_segment(run_id, owner, index, progress)
            self.continuations.send_segment(run_id, index)
            return TableExportOutcome(
                run_id, "continuing", progress.items, started_at=run.created_at, segment=index
            )
        run = self.runs.finish_segment(run_id, owner, index, progress)
        if len(run.finished) < len(run.segments):
            return TableExportOutcome(run_id, "segment-done", progress.items, segment=index)
        # Every segment is in the set, and DynamoDB added them one at a time: only this write
        # saw it fill. Its redelivery (had this invocation died) or a duplicate of a finished
        # segment's message may get here too; the manifest is a conditional put, written once.
        manifest_key = self._write_manifest(run)
        self.runs.complete_fanned_out(run_id, manifest_key)
        return TableExportOutcome(run_id, "complete", run.items, manifest_key, index)

    def _segment(
        self,
        run: ExportRun,
        index: int,
        *,
        owner: str,
        seconds_left: Callable[[], float],
        part_bytes: int,
        stop: threading.Event,
        segment_lease: bool = False,
    ) -> _Segment:
        """Segment ``index`` of ``run``'s worker, built alike in process and fanned out."""
        return _Segment(
            run_id=run.run_id,
            index=index,
            total=len(run.segments),
            owner=owner,
            items=self.items,
            exports=self.exports,
            runs=self.runs,
            out_of_time=lambda: seconds_left() <= 0,
            part_bytes=part_bytes,
            page_items=self.page_items,
            stop=stop,
            read_limit=self.read_limit(),
            segment_lease=segment_lease,
        )

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
