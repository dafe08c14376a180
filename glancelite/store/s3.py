"""S3 store: one object per image in a bucket of any S3-compatible service (boto3).

Uploads are streamed. The first part's worth of bytes is buffered; an image that ends
before that is sent with one PutObject, anything longer goes into a multipart upload that
starts as soon as the first part is full — whether or not the size is known, so no image
is ever held whole in memory (glance_store buffers anything under 100 MiB or of unknown
size). At most `s3_store_thread_pools` parts are in flight; the reader waits for a free
slot, so memory per upload stays below part size × (threads + 2) (threads + 1 parts, and
the chunks of the next part). Any failure aborts the
multipart upload (retried in the background while the service is unreachable); the
object appears only at CompleteMultipartUpload.

Part sizes: max(s3_store_large_object_chunk_size, ceil(size / 9000)) when the client
announced the size (9000 leaves room below S3's 10 000 parts); with no size the part size
doubles every 1000 parts, so 10 000 parts hold at least 5 TiB while small images keep
small parts.

Downloads are ranged GETs read in 1 MiB pieces; a GET that breaks off is resumed from
where it stopped (If-Match on the ETag, so a replaced object is never spliced in).

Locations are `s3://host[:port]/bucket/<image id>` (`s3+https://` for an https endpoint).
glance_store puts the access and secret key into the URL; here they never are, and a
URL carrying credentials is never taken for one of ours.
"""
import ctypes
import logging
import os
import platform
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as TransportError

from glancelite.store.base import StoredBlob, StoreFull, StoreUnavailable

LOG = logging.getLogger(__name__)

MIB = 1 << 20
MIN_PART = 5 * MIB                 # S3's smallest part (all but the last)
MAX_PART = 5 * 1024 * MIB          # S3's largest part
MAX_PARTS = 10_000
HINTED_PARTS = 9_000               # parts used for an announced size: headroom below 10 000
UNKNOWN_SIZE_TARGET = 5 << 40      # 5 TiB: what 10 000 growing parts must at least hold
GROWTH_EVERY = 1_000               # without a size, the part size doubles every 1000 parts
READ_SIZE = MIB                    # download reads
RESUMES = 3                        # a broken GET is resumed this many times,
RESUME_DELAY = 0.5                 # after 0.5, 1 and 2 seconds
S3_SCHEMES = ("s3", "s3+http", "s3+https")
# Error codes meaning "no room" (AWS, Ceph RGW, MinIO): StoreFull → 413.
FULL_CODES = {"EntityTooLarge", "QuotaExceeded", "XMinioStorageFull", "InsufficientStorage",
              "StorageFull", "XMinioAdminBucketQuotaExceeded"}
_M_MMAP_THRESHOLD = -3            # glibc mallopt parameter
_IMAGE_ID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _parts_from_mmap():
    """Have glibc give every allocation of 4 MiB or more (every part) its own mmap, handed
    back to the system when freed. By default glibc raises that threshold once it sees
    large blocks freed; parts then come from per-thread heaps that keep their high-water
    mark, and a worker's memory creeps up with each thread that ever held parts."""
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        try:
            ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, 4 * MIB)
        except (OSError, AttributeError):
            pass


class PartPlan:
    """The size of each part of one upload (part numbers start at 1)."""

    def __init__(self, chunk_size, size_hint=None):
        chunk_size = max(chunk_size, MIN_PART)
        self.growing = size_hint is None
        if self.growing:
            # 1000 parts of each of base, 2×base, ... 512×base = 1 023 000 × base in all.
            floor = -(-UNKNOWN_SIZE_TARGET // (GROWTH_EVERY * 1023))
            self.base = min(MAX_PART, max(chunk_size, floor))
        else:
            self.base = min(MAX_PART, max(chunk_size, -(-size_hint // HINTED_PARTS)))

    def size(self, number):
        if not self.growing:
            return self.base
        return min(MAX_PART, self.base << ((number - 1) // GROWTH_EVERY))

    def capacity(self):
        """Bytes that MAX_PARTS parts hold."""
        if not self.growing:
            return self.base * MAX_PARTS
        return sum(self.size(n) * GROWTH_EVERY for n in range(1, MAX_PARTS + 1, GROWTH_EVERY))


class S3Store:
    name = "s3"

    def __init__(self, host, access_key, secret_key, bucket, create_bucket_on_put=False,
                 bucket_url_format="auto", large_object_size=100, chunk_size=10, thread_pools=10,
                 cacert=None, region_name=None):
        missing = [option for option, value in (("s3_store_host", host),
                                                ("s3_store_access_key", access_key),
                                                ("s3_store_secret_key", secret_key),
                                                ("s3_store_bucket", bucket)) if not value]
        if missing:
            raise ValueError(f"the s3 store needs {', '.join(missing)}")
        if chunk_size < 5:
            raise ValueError("s3_store_large_object_chunk_size must be at least 5 (MiB)")
        if thread_pools < 1:
            raise ValueError("s3_store_thread_pools must be at least 1")
        if cacert and not os.path.isfile(cacert):
            raise ValueError(f"s3_store_cacert: no such file: {cacert}")
        # Like glance_store: a host without a scheme is reached over plain http.
        self.endpoint = host if host.startswith(("http://", "https://")) else f"http://{host}"
        endpoint = urlsplit(self.endpoint)
        if not endpoint.hostname or endpoint.username or endpoint.password:
            raise ValueError(f"s3_store_host must be a host name or URL without credentials, "
                             f"not {host!r}")
        self.scheme = "s3+https" if endpoint.scheme == "https" else "s3"
        self.netloc = endpoint.netloc.lower()
        self.bucket = bucket
        self.create_bucket_on_put = create_bucket_on_put
        self.large_object_size = large_object_size
        self.chunk_size = chunk_size * MIB
        self.thread_pools = thread_pools
        self.region_name = region_name or "us-east-1"
        self._access = (access_key, secret_key)
        self._verify = cacert or None
        self._config = Config(
            s3={"addressing_style": bucket_url_format},
            signature_version="s3v4",
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=10, read_timeout=60, tcp_keepalive=True,
            max_pool_connections=max(10, 2 * thread_pools),
            # Part checksums only where S3 demands them: many S3-compatible services do
            # not take the newer default ones. The service hashes every image itself.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required")
        self._lock = threading.Lock()
        self._client_pid = None
        self._client = None
        self._bucket_ready = False
        self._s3()  # built now (no request is sent): its ~15 MiB are not an upload's
        _parts_from_mmap()

    def __repr__(self):  # never the keys
        return f"<S3Store {self.endpoint} bucket={self.bucket}>"

    def properties(self):
        """What GET /v2/info/stores/detail shows (glance's names)."""
        return {"s3_store_large_object_size": self.large_object_size,
                "s3_store_large_object_chunk_size": self.chunk_size // MIB,
                "s3_store_thread_pools": self.thread_pools}

    # -- the Store protocol ---------------------------------------------------------------

    def url_for(self, image_id):
        return f"{self.scheme}://{self.netloc}/{self.bucket}/{image_id}"

    def add(self, image_id, chunks, size_hint=None):
        client = self._s3()
        self._ensure_bucket(client)
        plan = PartPlan(self.chunk_size, size_hint)
        # A part is gathered as copies of the chunks and joined once when it is full:
        # one exact-size allocation per part, which the allocator reuses from part to part
        # (a growing bytearray leaves a trail of freed smaller blocks behind it).
        upload, pending, filled, size = None, [], 0, 0
        try:
            for chunk in chunks:
                size += len(chunk)
                view = memoryview(chunk)
                while view:
                    wanted = plan.size(upload.next_number if upload else 1)
                    taken = min(len(view), wanted - filled)
                    pending.append(bytes(view[:taken]))  # chunks are only lent (store.base)
                    filled += taken
                    view = view[taken:]
                    if filled == wanted:
                        if upload is None:
                            upload = _MultipartUpload(self, client, image_id)
                        upload.send(pending)  # empties `pending`
                        filled = 0
            if upload is None:
                client.put_object(Bucket=self.bucket, Key=image_id, Body=b"".join(pending))
            else:
                if pending:
                    upload.send(pending)
                upload.complete()
        except BaseException as exc:
            if upload is not None:
                upload.abort()
            error = _store_error(exc, f"upload of {image_id} to {self.bucket}")
            if error is exc:
                raise
            raise error from exc
        return StoredBlob(url=self.url_for(image_id), size=size)

    def blob_owner(self, url):
        key = self._key(url)
        return key if _IMAGE_ID.match(key) else None

    def open(self, url, offset, length=None):
        key = self._key(url)
        if length == 0:
            return iter(())
        return _ObjectStream(self._s3(), self.bucket, key, offset, length)

    def delete(self, url):
        key = self._key(url)
        try:
            self._s3().delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise _store_error(exc, f"delete of {url}") from exc

    def size_of(self, url):
        try:
            key = self._key(url)
        except ValueError:
            return None
        try:
            return self._s3().head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise _store_error(exc, f"size of {url}") from exc
        except BotoCoreError as exc:
            raise _store_error(exc, f"size of {url}") from exc

    def owns(self, url):
        try:
            self._key(url)
        except ValueError:
            return False
        return True

    # -- beyond the protocol --------------------------------------------------------------

    def discard_partial(self, image_id):
        """Abort every unfinished multipart upload of an image (after a worker died);
        returns how many there were."""
        client = self._s3()
        try:
            listed = client.list_multipart_uploads(Bucket=self.bucket, Prefix=image_id)
            uploads = [u for u in listed.get("Uploads", []) if u["Key"] == image_id]
            for upload in uploads:
                client.abort_multipart_upload(Bucket=self.bucket, Key=image_id,
                                              UploadId=upload["UploadId"])
        except (BotoCoreError, ClientError) as exc:
            raise _store_error(exc, f"cleanup of {image_id}") from exc
        return len(uploads)

    # -- internals ------------------------------------------------------------------------

    def _key(self, url):
        """The object key of an s3 URL of this store's bucket; ValueError for any other URL."""
        parts = urlsplit(url)
        if parts.scheme not in S3_SCHEMES or parts.username is not None \
                or parts.password is not None or parts.query or parts.fragment:
            raise ValueError(f"not an s3 URL of this store: {url}")
        bucket, _, key = parts.path.lstrip("/").partition("/")
        if parts.netloc.lower() != self.netloc or bucket != self.bucket or not key:
            raise ValueError(f"not an s3 URL of this store: {url}")
        return key

    def _s3(self):
        """One boto3 client per process (created after gunicorn forks, never shared)."""
        with self._lock:
            if self._client_pid != os.getpid():
                access_key, secret_key = self._access
                session = boto3.session.Session()
                self._client = session.client(
                    "s3", endpoint_url=self.endpoint, region_name=self.region_name,
                    aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                    verify=self._verify, config=self._config)
                self._client_pid = os.getpid()
                self._bucket_ready = not self.create_bucket_on_put
            return self._client

    def _ensure_bucket(self, client):
        if self._bucket_ready:
            return
        try:
            client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _status(exc) != 404:
                raise _store_error(exc, f"bucket {self.bucket}") from exc
            self._create_bucket(client)
        except BotoCoreError as exc:
            raise _store_error(exc, f"bucket {self.bucket}") from exc
        self._bucket_ready = True

    def _create_bucket(self, client):
        arguments = {"Bucket": self.bucket}
        if self.region_name != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": self.region_name}
        try:
            client.create_bucket(**arguments)
            LOG.info("created bucket %s at %s", self.bucket, self.endpoint)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise _store_error(exc, f"creating bucket {self.bucket}") from exc
        except BotoCoreError as exc:
            raise _store_error(exc, f"creating bucket {self.bucket}") from exc

    def _abort_later(self, client, key, upload_id):
        """Keep trying to abort an upload S3 refused to abort (it was unreachable)."""
        def run():
            delay = 1
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                time.sleep(delay)
                try:
                    client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                    LOG.info("aborted multipart upload of %s after a retry", key)
                    return
                except ClientError as exc:
                    if _status(exc) == 404:  # NoSuchUpload: already gone
                        return
                except BotoCoreError:
                    pass
                delay = min(delay * 2, 30)
            LOG.error("gave up aborting multipart upload %s of %s in bucket %s: it stays until "
                      "`glancelite-manage` cleanup or a bucket lifecycle rule removes it",
                      upload_id, key, self.bucket)
        threading.Thread(target=run, name=f"s3-abort-{key}", daemon=True).start()


class _MultipartUpload:
    """One multipart upload: parts go out on a small thread pool, a bounded number at once."""

    def __init__(self, store, client, key):
        self.store, self.client, self.key = store, client, key
        self.upload_id = client.create_multipart_upload(Bucket=store.bucket, Key=key)["UploadId"]
        self.pool = ThreadPoolExecutor(store.thread_pools, thread_name_prefix=f"s3-{key[:8]}")
        self.slots = threading.Semaphore(store.thread_pools)
        self.futures = []
        self.error = None

    @property
    def next_number(self):
        return len(self.futures) + 1

    def send(self, pieces):
        """Join `pieces` (emptying the list) into the next part and queue it; waits first
        while thread_pools parts are in flight, so that at most thread_pools + 1 parts
        (counting the one being gathered) are in memory at once."""
        number = self.next_number
        if number > MAX_PARTS:
            raise StoreFull(f"image {self.key} needs more than {MAX_PARTS} parts")
        self.slots.acquire()
        if self.error is not None:
            self.slots.release()
            raise self.error
        data = b"".join(pieces)
        pieces.clear()
        # The part travels in a list its thread empties, so that its bytes are freed
        # before its slot is.
        self.futures.append(self.pool.submit(self._put_part, number, [data]))

    def _put_part(self, number, holder):
        data = holder.pop()
        try:
            response = self.client.upload_part(Bucket=self.store.bucket, Key=self.key,
                                               UploadId=self.upload_id, PartNumber=number,
                                               Body=data)
            return {"PartNumber": number, "ETag": response["ETag"]}
        except BaseException as exc:
            if self.error is None:
                self.error = exc
            raise
        finally:
            data = None
            self.slots.release()

    def complete(self):
        parts = [future.result() for future in self.futures]
        self.pool.shutdown()
        self.client.complete_multipart_upload(Bucket=self.store.bucket, Key=self.key,
                                              UploadId=self.upload_id,
                                              MultipartUpload={"Parts": parts})

    def abort(self):
        self.pool.shutdown(wait=True, cancel_futures=True)
        try:
            self.client.abort_multipart_upload(Bucket=self.store.bucket, Key=self.key,
                                               UploadId=self.upload_id)
        except (BotoCoreError, ClientError) as exc:
            LOG.warning("abort of multipart upload of %s failed (%s); retrying in the "
                        "background", self.key, exc)
            self.store._abort_later(self.client, self.key, self.upload_id)


class _ObjectStream:
    """An object's bytes from `offset` (for `length` bytes, or to the end) in 1 MiB reads.

    The first GET happens at once, so an unreachable store fails the request before any
    response header is sent; a GET that breaks off later is resumed where it stopped."""

    def __init__(self, client, bucket, key, offset, length):
        self.client, self.bucket, self.key = client, bucket, key
        self.position = offset
        self.end = None if length is None else offset + length
        self.etag = None
        self.resumes = 0
        self.body = self._get()

    def _get(self):
        arguments = {"Bucket": self.bucket, "Key": self.key}
        if self.position or self.end is not None:
            last = "" if self.end is None else str(self.end - 1)
            arguments["Range"] = f"bytes={self.position}-{last}"
        if self.etag:
            arguments["IfMatch"] = self.etag
        try:
            response = self.client.get_object(**arguments)
        except (BotoCoreError, ClientError) as exc:
            raise _store_error(exc, f"download of {self.key}") from exc
        self.etag = self.etag or response.get("ETag")
        return response["Body"]

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            try:
                chunk = self.body.read(READ_SIZE) if self.body is not None else b""
            except (BotoCoreError, TransportError, OSError, ValueError) as exc:
                self._close_body()
                if self.resumes >= RESUMES:
                    raise _store_error(exc, f"download of {self.key}") from exc
                self.resumes += 1
                LOG.warning("download of %s broke off at byte %d (%s); resuming", self.key,
                            self.position, exc)
                time.sleep(RESUME_DELAY * 2 ** (self.resumes - 1))
                self.body = self._get()
                continue
            if not chunk:
                self.close()
                raise StopIteration
            self.position += len(chunk)
            return chunk

    def _close_body(self):
        if self.body is not None:
            try:
                self.body.close()
            except Exception:  # closing a broken connection may fail again; nothing to keep
                pass
            self.body = None

    def close(self):
        self._close_body()


def _status(exc):
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _store_error(exc, what):
    """StoreFull / StoreUnavailable for boto errors; any other exception is returned as is."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in FULL_CODES or _status(exc) in (413, 507):
            return StoreFull(f"{what}: {code}")
        LOG.error("%s: S3 answered %s %s", what, _status(exc), code)
        return StoreUnavailable(f"{what}: S3 error {code}")
    if isinstance(exc, (BotoCoreError, TransportError)):
        LOG.error("%s: %s", what, exc)
        return StoreUnavailable(f"{what}: {exc.__class__.__name__}")
    return exc
