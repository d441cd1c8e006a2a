"""Reading one repository's manifests and configs ahead of its abstraction (object stores).

A repository is abstracted by one worker, artifact after artifact, and on S3 every manifest
and config is a request of tens of milliseconds: a repository of 10,000 tags would be
20,000 requests one after the other, whatever ``--jobs`` says. ``ReadAhead`` stands in for
the ``Layout`` the abstraction reads from: it reads the manifest of the next artifacts (and
the config a manifest names) on a shared I/O pool, a bounded window ahead of the artifact
being abstracted, and hands each result over once. What the abstraction reads, in which
order, and every error it sees (a missing blob, an unlinked config) are exactly those of
reading synchronously; only the waiting overlaps.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Executor, Future

from ..registry import manifest as m
from ..registry.layout import Layout, RepositoryListing, parse_digest


class ReadAhead:
    """The Layout of one repository's abstraction, reading a window of artifacts ahead."""

    def __init__(self, layout: Layout, listing: RepositoryListing, pool: Executor, digests, window: int):
        self._layout, self._listing, self._pool = layout, listing, pool
        self._window = max(1, window)
        self._queue = deque(digests)
        # manifest blob digest -> Future of (its bytes, (config digest, bytes, error) or None)
        self._ahead: dict[str, Future] = {}
        # config digest -> (bytes, None) or (None, exception), read with its manifest
        self._configs: dict[str, tuple[bytes | None, BaseException | None]] = {}
        self._fill()

    def __getattr__(self, name):
        return getattr(self._layout, name)   # everything not read ahead: the layout itself

    # ------------------------------------------------------------------ reads
    def read_blob(self, digest: str) -> bytes:
        future = self._ahead.pop(digest, None)
        if future is None:
            return self._layout.read_blob(digest)
        data, config = future.result()        # re-raises what reading the manifest raised
        if config is not None:
            self._configs[config[0]] = config[1:]
        self._fill()
        return data

    def read_repository_blob(self, listing: RepositoryListing, digest: str) -> bytes:
        kept = self._configs.pop(digest, None) if listing is self._listing else None
        if kept is None:
            return self._layout.read_repository_blob(listing, digest)
        data, error = kept
        if error is not None:
            raise error
        assert data is not None  # read without an error
        return data

    def close(self) -> None:
        """Drop what was read ahead and not asked for; reads not started are cancelled."""
        for future in self._ahead.values():
            future.cancel()
        self._ahead.clear()
        self._configs.clear()
        self._queue.clear()

    # ------------------------------------------------------------------ ahead
    def _fill(self) -> None:
        while self._queue and len(self._ahead) < self._window:
            target = self._manifest_blob(self._queue.popleft())
            if target is not None and target not in self._ahead:
                self._ahead[target] = self._pool.submit(self._read, target)

    def _manifest_blob(self, digest: str) -> str | None:
        """The blob the abstraction will read for artifact digest (its revision link's target,
        or the digest itself for a legacy layer-linked manifest); None when it reads none."""
        if digest in self._listing.revisions:
            return self._listing.revisions[digest]
        return digest if parse_digest(digest) and self._layout.layer_linked(self._listing, digest) else None

    def _read(self, target: str):
        data = self._layout.read_blob(target)
        return data, self._read_config(data)

    def _read_config(self, data: bytes):
        """(digest, bytes, None) or (digest, None, error) for the config a manifest names."""
        try:
            doc = m.parse_document(data)   # depth-checked: a hostile manifest is the abstraction's to report
        except m.Invalid:
            return None
        config = doc.get("config") if isinstance(doc, dict) else None
        digest = config.get("digest") if isinstance(config, dict) else None
        if not isinstance(digest, str):
            return None
        try:
            return digest, self._layout.read_repository_blob(self._listing, digest), None
        except Exception as e:  # handed over as reading it synchronously would have raised it
            return digest, None, e
