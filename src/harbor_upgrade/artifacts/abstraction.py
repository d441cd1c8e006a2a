"""Manifest bytes -> the artifact row Harbor 2.4 stores when that artifact is pushed.

Spec artifact-abstraction §4. Two steps, as in Harbor: the envelope (media types, size,
annotations, references) depends on the manifest kind; then the processor chosen by
the final ``media_type`` gives ``type``, ``extra_attrs`` and ``icon``. An index's
children are abstracted first (each artifact once per repository); any failure is a
``Failure`` with one of the spec's reason codes and nothing is stored for it.

Stored objects are hostile input: a manifest or config that cannot be read (a symbolic
link, a FIFO, outside the storage root) or is larger than the registry's 4 MiB fails that
artifact (``manifest-unreadable``, ``manifest-too-large``, ``config-…``), a document
nesting deeper than ``manifest.MAX_DEPTH`` too (``…-too-deep``), and an icon that cannot be
read is a problem beside a stored artifact (``icon-unreadable``). None of them stops the
abstraction of anything else.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..registry import manifest as m
from ..registry.layout import Layout, RepositoryListing
from ..registry.storage import ObjectMissing, ObjectTooLarge, ObjectUnreadable

ICON_ANNOTATION = "io.goharbor.artifact.v1alpha1.icon"
SKIP_LIST_ANNOTATION = "io.goharbor.artifact.v1alpha1.skip-list"
ARTIFACT_TYPE_ANNOTATION = "org.opencontainers.artifactType"
CNAB_TYPE_ANNOTATION = "io.cnab.manifest.type"

IMAGE_CONFIGS = frozenset({"application/vnd.oci.image.config.v1+json",
                           "application/vnd.docker.container.image.v1+json"})
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
CNAB_MANIFEST = "application/vnd.cnab.manifest.v1"
# Harbor's default processor: application/vnd.<vendor>.<NAME>.config.<version>+json -> NAME
_DEFAULT_TYPE_RE = re.compile(r"application/vnd\.[^.]*\.(.*)\.config\.[^.]*\+json\Z")
_ICON_SNIFF = 1 << 20
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"\xff\xd8\xff")


@dataclass(frozen=True)
class Reference:
    """An ``artifact_reference`` row of an index (ids come from the database)."""
    child_digest: str
    platform: str
    urls: str
    annotations: dict | None


@dataclass
class Artifact:
    """The storage-derived columns of one ``artifact`` row."""
    repository_name: str
    digest: str
    manifest_media_type: str
    media_type: str
    size: int
    type: str
    extra_attrs: str
    annotations: dict | None
    icon: str = ""
    references: list[Reference] = field(default_factory=list)


class Failure(Exception):
    """An artifact Harbor would not store: reason is the report code (spec §4.4)."""

    def __init__(self, repository: str, digest: str, reason: str, detail: str):
        super().__init__(f"{repository}@{digest}: {reason}: {detail}")
        self.repository, self.digest, self.reason, self.detail = repository, digest, reason, detail


def default_type(media_type: str) -> str:
    found = _DEFAULT_TYPE_RE.match(media_type)
    return found.group(1).upper() if found else "UNKNOWN"


def _map_or_none(value: dict | None) -> dict | None:
    return value or None


def _attrs_text(attrs: dict | None) -> str:
    return m.go_json(attrs) if attrs else ""


class RepositoryAbstractor:
    """Abstracts the artifacts of one repository, memoising every result (an index and
    the artifacts it lists share their children)."""

    def __init__(self, layout: Layout, listing: RepositoryListing):
        self.layout, self.listing, self.name = layout, listing, listing.name
        self._done: dict[str, Artifact | Failure] = {}
        self._docs: dict[str, tuple[bytes, dict, str]] = {}
        # by id(): every document stays alive in _docs for the abstractor's lifetime
        self._image_manifests: dict[int, dict] = {}
        #: problems that do not fail their artifact: (digest, reason, detail)
        self.problems: list[tuple[str, str, str]] = []

    # ------------------------------------------------------------------ public
    def artifact(self, digest: str) -> Artifact:
        """The row for digest, or raise its Failure."""
        return self._abstract(digest, ())

    def results(self) -> dict[str, Artifact | Failure]:
        """Everything abstracted so far (children included), by digest."""
        return self._done

    # ------------------------------------------------------------------ core
    def _abstract(self, digest: str, stack: tuple[str, ...]) -> Artifact:
        done = self._done.get(digest)
        if done is None:
            if digest in stack:
                raise self._fail(digest, "index-cycle", "the index lists itself through its children")
            try:
                done = self._build(digest, stack + (digest,))
            except Failure as f:
                done = f
            except m.Invalid as e:
                done = self._fail(digest, e.reason, e.message)
            except ObjectUnreadable as e:   # an object read on the way (a schema1 layer, a child's blob)
                done = self._fail(digest, "storage-unreadable", e.message)
            except RecursionError:          # the last guard: documents are depth-checked when parsed
                done = self._fail(digest, "nesting-too-deep", "a document nests too deep to process")
            self._done[digest] = done
        if isinstance(done, Failure):
            raise done
        return done

    def _fail(self, digest: str, reason: str, detail: str) -> Failure:
        return Failure(self.name, digest, reason, detail)

    def _manifest(self, digest: str) -> tuple[bytes, dict, str]:
        """(stored bytes, parsed JSON, served content type) of a manifest of this repository."""
        cached = self._docs.get(digest)
        if cached is not None:
            return cached
        # the registry serves a manifest through its revision link, or (registry 2.1.0 legacy)
        # through a layer link of the same digest
        if digest in self.listing.revisions:
            target = self.listing.revisions[digest]
            if target is None:
                raise self._fail(digest, "revision-link-invalid",
                                 self.listing.link_errors.get(digest, "the revision link does not hold a digest"))
        elif self._layer_linked(digest):
            target = digest
        else:
            raise self._fail(digest, "manifest-unknown", "not a manifest of this repository")
        try:
            data = self.layout.read_blob(target)
        except ObjectMissing:
            raise self._fail(digest, "manifest-blob-missing", f"blob {target} is missing") from None
        except ObjectTooLarge as e:
            raise self._fail(digest, "manifest-too-large", e.message) from None
        except ObjectUnreadable as e:
            raise self._fail(digest, "manifest-unreadable", e.message) from None
        doc = m.parse_document(data)
        content_type = m.classify(doc)
        assert isinstance(doc, dict)  # classify refuses anything else
        self._docs[digest] = (data, doc, content_type)
        return data, doc, content_type

    def _as_image_manifest(self, doc: dict) -> dict:
        """doc decoded as image-spec's Manifest (what Harbor unmarshals), once per document."""
        parsed = self._image_manifests.get(id(doc))
        if parsed is None:
            parsed = self._image_manifests[id(doc)] = m.decode(doc, m.OCI_IMAGE_MANIFEST, "manifest-invalid")
        return parsed

    def _layer_linked(self, digest: str) -> bool:
        return self.layout.layer_linked(self.listing, digest)

    def _config(self, digest: str, descriptor: dict) -> bytes:
        config_digest = descriptor.get("digest", "")
        try:
            return self.layout.read_repository_blob(self.listing, config_digest)
        except ObjectMissing:
            raise self._fail(digest, "config-blob-missing",
                             f"config {config_digest or '(none)'} is not readable in the repository") from None
        except ObjectTooLarge as e:
            raise self._fail(digest, "config-too-large", e.message) from None
        except ObjectUnreadable as e:
            raise self._fail(digest, "config-unreadable", e.message) from None

    def _build(self, digest: str, stack: tuple[str, ...]) -> Artifact:
        data, doc, content_type = self._manifest(digest)
        if content_type == m.SCHEMA1:
            art = self._schema1_envelope(digest, data, doc)
        elif content_type in m.IMAGE_MANIFESTS:
            art = self._image_envelope(digest, data, doc, content_type)
        else:
            art = self._index_envelope(digest, data, doc, content_type, stack)
        self._process(art, doc)
        return art

    # ------------------------------------------------------------------ step 1: envelope
    def _schema1_envelope(self, digest: str, data: bytes, doc: dict) -> Artifact:
        parsed = m.decode(doc, m.SCHEMA1_MANIFEST, "manifest-invalid")
        blob_sums = {layer.get("blobSum", "") for layer in parsed.get("fsLayers") or ()}
        size = m.schema1_served_length(data)
        for blob in blob_sums:
            size += self.layout.blob_size(blob) or 0
        return Artifact(self.name, digest, m.SCHEMA1, m.SCHEMA1, size, "", "", None)

    def _image_envelope(self, digest: str, data: bytes, doc: dict, content_type: str) -> Artifact:
        parsed = self._as_image_manifest(doc)
        config = parsed.get("config") or {}
        size = len(data) + config.get("size", 0) + sum(layer.get("size", 0) for layer in parsed.get("layers") or ())
        return Artifact(self.name, digest, content_type, config.get("mediaType", ""), size, "", "",
                        _map_or_none(parsed.get("annotations")))

    def _index_envelope(self, digest: str, data: bytes, doc: dict, content_type: str,
                        stack: tuple[str, ...]) -> Artifact:
        parsed = m.decode(doc, m.OCI_IMAGE_INDEX, "manifest-invalid")
        annotations = parsed.get("annotations") or {}
        media_type = annotations.get(ARTIFACT_TYPE_ANNOTATION) or content_type
        entries = parsed.get("manifests") or ()
        # Every child first, whatever happens to the index: a client pushes each child before
        # the index, so Harbor has them all even when the index itself is refused.
        for entry in entries:
            try:
                self._abstract(entry.get("digest", ""), stack)
            except Failure:
                pass
        size = len(data)
        references: list[Reference] = []
        seen: set[str] = set()
        for entry in entries:
            child = entry.get("digest", "")
            if child in seen:
                raise self._fail(digest, "duplicate-reference", f"lists {child} twice")
            seen.add(child)
            try:
                size += self._abstract(child, stack).size
            except Failure as f:
                if f.reason == "index-cycle":
                    raise self._fail(digest, "index-cycle", f"reaches itself through {child}") from None
                raise self._fail(digest, "child-not-artifact", f"child {child}: {f.reason}") from None
            urls = entry.get("urls")
            references.append(Reference(child, m.platform_text(entry.get("platform")),
                                        m.go_json(urls) if urls else "",
                                        _map_or_none(entry.get("annotations"))))
        return Artifact(self.name, digest, content_type, media_type, size, "", "",
                        _map_or_none(parsed.get("annotations")), references=references)

    # ------------------------------------------------------------------ step 2: processor
    def _process(self, art: Artifact, doc: dict) -> None:
        media_type = art.media_type
        if media_type in IMAGE_CONFIGS:
            art.type, art.extra_attrs = "IMAGE", self._image_attrs(art.digest, doc)
        elif media_type == m.SCHEMA1:
            parsed = m.decode(doc, m.SCHEMA1_MANIFEST, "manifest-invalid")
            art.type = "IMAGE"
            art.extra_attrs = m.go_json({"architecture": parsed.get("architecture", "")})
        elif media_type in m.INDEXES:
            art.type = "IMAGE"
        elif media_type == HELM_CONFIG:
            art.type = "CHART"
            art.extra_attrs = _attrs_text(self._whole_config(art.digest, doc))
        elif media_type == CNAB_MANIFEST:
            art.type = "CNAB"
            art.extra_attrs = _attrs_text(self._cnab_attrs(art))
        else:
            self._default(art, doc)

    def _image_attrs(self, digest: str, doc: dict) -> str:
        parsed = self._as_image_manifest(doc)
        descriptor = parsed.get("config") or {}
        image: dict = {}
        if descriptor.get("size", 0) != 0:
            value = m.parse_first_value(self._config(digest, descriptor))
            image = m.decode(value, m.IMAGE, "config-invalid") or {}
        config = image.get("config") or {}
        labels = config.get("Labels")
        author = image.get("author", "")
        if not author and labels:
            author = labels.get("maintainer", "")
        # ImageConfig's members in struct order, its maps with sorted keys, as Go writes them
        members = {k: dict(sorted(v.items())) if isinstance(v, dict) else v
                   for k in m.IMAGE_CONFIG_ORDER if (v := config.get(k))}
        return m.go_json_ordered({"architecture": image.get("architecture", ""), "author": author,
                                  "config": members, "created": image.get("created"),
                                  "os": image.get("os", "")})

    def _whole_config(self, digest: str, doc: dict) -> dict | None:
        """The chart rule: the config blob as a generic JSON object (nothing when its
        descriptor says size 0 or it is null)."""
        parsed = self._as_image_manifest(doc)
        descriptor = parsed.get("config") or {}
        if descriptor.get("size", 0) == 0:
            return None
        return self._generic_config(digest, descriptor)

    def _generic_config(self, digest: str, descriptor: dict) -> dict | None:
        value = m.decode(m.parse_first_value(self._config(digest, descriptor)), m.ANY, "config-invalid")
        if value is not None and not isinstance(value, dict):
            raise self._fail(digest, "config-invalid", "the config is not a JSON object")
        return value

    def _cnab_attrs(self, art: Artifact) -> dict | None:
        configs = [r for r in art.references
                   if (r.annotations or {}).get(CNAB_TYPE_ANNOTATION) == "config"]
        if not configs:
            return None
        child = configs[-1].child_digest
        _data, child_doc, _ct = self._manifest(child)
        return self._whole_config(art.digest, child_doc)

    def _default(self, art: Artifact, doc: dict) -> None:
        art.type = default_type(art.media_type)
        parsed = self._as_image_manifest(doc)
        descriptor = parsed.get("config") or {}
        attrs: dict | None = None
        if art.manifest_media_type in m.IMAGE_MANIFESTS:
            if descriptor.get("size", 0) == 0:
                self._config(art.digest, descriptor)  # fetched (and so required) all the same
            else:
                attrs = self._generic_config(art.digest, descriptor)
        skip = (descriptor.get("annotations") or {}).get(SKIP_LIST_ANNOTATION)
        if skip is not None and attrs:
            for key in skip.split(","):
                attrs.pop(key, None)
        art.extra_attrs = _attrs_text(attrs)
        art.icon = self._icon(art.digest, parsed.get("layers") or ())

    def _icon(self, digest: str, layers) -> str:
        """The first layer annotated as icon, if its content sniffs as PNG/GIF/JPEG."""
        for layer in layers:
            if ICON_ANNOTATION in (layer.get("annotations") or {}):
                icon = layer.get("digest", "")
                try:
                    head = self.layout.repository_blob_head(self.listing, icon, _ICON_SNIFF)
                except ObjectMissing:
                    return ""
                except ObjectUnreadable as e:
                    self.problems.append((digest, "icon-unreadable", e.message))
                    return ""
                return icon if head.startswith(_IMAGE_MAGIC) else ""
        return ""
