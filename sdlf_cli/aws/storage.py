"""S3: putting files, listing and reading objects, and emptying and deleting buckets."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sdlf_cli.aws.gateway import Gateway
from sdlf_cli.errors import NotFound, SdlfError


@dataclass(frozen=True)
class Put:
    etag: str
    version_id: str | None


@dataclass(frozen=True)
class StoredObject:
    key: str
    etag: str
    size: int


@dataclass(frozen=True)
class Version:
    """One entry of a bucket's version listing; a delete marker has no etag."""

    key: str
    version_id: str | None
    etag: str | None
    last_modified: datetime
    is_latest: bool
    delete_marker: bool = False


def _version_id(entry: dict) -> str | None:
    version = entry.get("VersionId")
    return None if version in (None, "null") else version


class Storage(Gateway):
    service = "s3"

    def versions(self, bucket: str, prefix: str = "", delimiter: str | None = None,
                 page_size: int = 1000) -> Iterator[Version]:
        """Every version and delete marker under `prefix`, page by page (a listing: no object is read)."""
        kwargs: dict = {"Bucket": bucket, "Prefix": prefix, "PaginationConfig": {"PageSize": page_size}}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        for page in self._whole_pages("list_object_versions", **kwargs):
            for entry in page.get("Versions", []):
                yield Version(entry["Key"], _version_id(entry), str(entry.get("ETag", "")).strip('"'),
                              entry["LastModified"], bool(entry.get("IsLatest")))
            for entry in page.get("DeleteMarkers", []):
                yield Version(entry["Key"], _version_id(entry), None, entry["LastModified"],
                              bool(entry.get("IsLatest")), True)

    def folders(self, bucket: str, prefix: str = "") -> list[str]:
        """The "folders" right below `prefix` (common prefixes with the delimiter "/")."""
        return [p["Prefix"] for p in self._pages("list_objects_v2", "CommonPrefixes", Bucket=bucket, Prefix=prefix,
                                                   Delimiter="/")]

    def keys(self, bucket: str, prefix: str = "", delimiter: str | None = None) -> list[str]:
        """The keys under `prefix` (only those right below it with a delimiter)."""
        kwargs = {"Bucket": bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        return [o["Key"] for o in self._pages("list_objects_v2", "Contents", **kwargs)]

    def put_file(self, bucket: str, key: str, path: Path) -> Put:
        with path.open("rb") as body:
            response = self._call("put_object", Bucket=bucket, Key=key, Body=body)
        return Put(response["ETag"].strip('"'), response.get("VersionId"))

    def put_bytes(self, bucket: str, key: str, body: bytes) -> Put:
        response = self._call("put_object", Bucket=bucket, Key=key, Body=body)
        return Put(response["ETag"].strip('"'), response.get("VersionId"))

    def objects(self, bucket: str, prefix: str = "") -> list[StoredObject]:
        return [StoredObject(o["Key"], o.get("ETag", ""), int(o.get("Size", 0)))
                for o in self._pages("list_objects_v2", "Contents", Bucket=bucket, Prefix=prefix)]

    def read(self, bucket: str, key: str) -> bytes:
        return self._call("get_object", Bucket=bucket, Key=key)["Body"].read()

    def object_exists(self, bucket: str, key: str, version_id: str | None = None) -> bool:
        """Whether the object (that version of it, when given) is there: one HEAD request, nothing read."""
        kwargs = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            self._call("head_object", **kwargs)
        except NotFound:
            return False
        return True

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self._call("head_bucket", Bucket=bucket)
        except NotFound:
            return False
        return True

    def empty_bucket(self, bucket: str) -> int:
        """Delete every object version and delete marker; returns how many were deleted."""
        count = 0
        for page in self._whole_pages("list_object_versions", Bucket=bucket):
            batch = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                     for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]]
            for start in range(0, len(batch), 1000):
                chunk = batch[start:start + 1000]
                response = self._call("delete_objects", Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
                if response.get("Errors"):
                    first = response["Errors"][0]
                    raise SdlfError(f"s3://{bucket}/{first.get('Key')}: {first.get('Code')}: {first.get('Message')}")
                count += len(chunk)
        return count

    def delete_bucket(self, bucket: str) -> None:
        self._call("delete_bucket", Bucket=bucket)

    def upload_artifacts(self, artifacts, bucket: str, dry_run: bool = False):
        """Each artifact whose content-hash key is not in the bucket yet (see `package.upload_artifacts`)."""
        from sdlf_cli.package import upload_artifacts

        return upload_artifacts(artifacts, self.client, bucket, dry_run=dry_run)

