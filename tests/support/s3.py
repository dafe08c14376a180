"""A real S3 endpoint for tests: moto's ThreadedMotoServer on a loopback port.

glancelite's gunicorn workers talk HTTP to it with boto3, as they would to AWS, Ceph RGW
or MinIO; tests look inside with their own boto3 client. `stop()` takes the endpoint
down the hard way — listening socket closed and every open connection cut — so a client
sees what a crashed S3 looks like; `start()` brings it back on the same port with its
data (moto keeps buckets in this process).
"""
import logging
import socket
import uuid

import boto3
from botocore.config import Config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from tests.support.server import free_port
from tests.support.transfer import stored_files

ACCESS_KEY = "AKIAGLANCELITETEST00"
SECRET_KEY = "glancelite/test/secret/never/in/a/location"


class _TrackedHandler(MotoRequestHandler):
    """Remembers its connection so that stop() can cut it."""

    def setup(self):
        super().setup()
        self.server.open_connections.add(self.connection)

    def finish(self):
        self.server.open_connections.discard(self.connection)
        super().finish()


class _StoppableMotoServer(ThreadedMotoServer):
    def _server_entry(self):
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(self._ip_address, self._port, app, True,
                                   request_handler=_TrackedHandler)
        self._server.open_connections = set()
        self._server_ready_event.set()
        self._server.serve_forever()

    def stop(self):
        super().stop()
        self._server.server_close()
        for connection in list(self._server.open_connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class S3Server:
    """moto on 127.0.0.1:<port>; `url` is what s3_store_host is set to."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._moto = None
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request

    def start(self):
        self._moto = _StoppableMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._moto.start()
        return self

    def stop(self):
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    @property
    def running(self):
        return self._moto is not None

    def client(self):
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            config=Config(retries={"max_attempts": 1},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))

    def new_bucket(self, create=True):
        name = f"glancelite-{uuid.uuid4().hex[:12]}"
        if create:
            self.client().create_bucket(Bucket=name)
        return name

    def store_options(self, bucket, **extra):
        """[glance_store] (or backend section) options of an s3 store on this server."""
        options = {"s3_store_host": self.url, "s3_store_access_key": ACCESS_KEY,
                   "s3_store_secret_key": SECRET_KEY, "s3_store_bucket": bucket,
                   "s3_store_create_bucket_on_put": "true"}
        options.update(extra)
        return options

    def objects(self, bucket):
        """Keys of the finished objects in a bucket."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def unfinished_uploads(self, bucket):
        """Keys of the multipart uploads started and neither completed nor aborted."""
        listed = self.client().list_multipart_uploads(Bucket=bucket)
        return sorted(upload["Key"] for upload in listed.get("Uploads", []))

    def uploaded_parts(self, bucket, key):
        """Part numbers S3 holds for the unfinished multipart uploads of a key."""
        client = self.client()
        uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
        return sorted(part["PartNumber"] for upload in uploads if upload["Key"] == key
                      for part in client.list_parts(Bucket=bucket, Key=key,
                                                    UploadId=upload["UploadId"]).get("Parts", []))

    def leftovers(self, bucket, image_id):
        """Everything in a bucket about one image: objects and unfinished uploads."""
        return ([key for key in self.objects(bucket) if image_id in key]
                + [f"{key} (unfinished upload)" for key in self.unfinished_uploads(bucket)
                   if image_id in key])

    def etag(self, bucket, key):
        return self.client().head_object(Bucket=bucket, Key=key)["ETag"].strip('"')


def s3_store_overrides(s3, bucket, overrides=None, **options):
    """Server overrides making `default_store = s3` on `bucket` of `s3` (single-store);
    `overrides` go on top."""
    merged = {"glance_store": {"default_store": "s3", **s3.store_options(bucket, **options)}}
    for section, values in (overrides or {}).items():
        merged.setdefault(section, {}).update(values)
    return merged


def describe_store(base_url, store, s3=None, bucket=None):
    """Tell a test server's URL which store it writes to (for blobs_of)."""
    base_url.store, base_url.s3, base_url.bucket = store, s3, bucket
    return base_url


def blobs_of(server, image_id):
    """What the server's store holds about an image: its blob under the image id, and any
    leftover (temporary file; S3 object or unfinished multipart upload)."""
    if getattr(server, "store", "file") == "s3":
        return server.s3.leftovers(server.bucket, image_id)
    return [name for name in stored_files(server.datadir) if image_id in name]
