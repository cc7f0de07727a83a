"""The options of django-storages' S3Storage for CHAT_FILE_STORAGE=s3, from
the CHAT_S3_* variables (chatsite/settings.py; docs/files.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def s3_options(environ: Mapping[str, str]) -> dict[str, Any]:
    from botocore.config import Config

    return {
        "endpoint_url": environ.get("CHAT_S3_ENDPOINT_URL") or None,
        "bucket_name": environ.get("CHAT_S3_BUCKET", "chat-files"),
        "access_key": environ.get("CHAT_S3_ACCESS_KEY_ID") or None,
        "secret_key": environ.get("CHAT_S3_SECRET_ACCESS_KEY") or None,
        "region_name": environ.get("CHAT_S3_REGION", "us-east-1"),
        # Path-style, SigV4; checksums only where the operation needs them:
        # S3-compatible servers differ there (one answered a ranged GET with
        # the whole object's CRC, which botocore then refused).
        "client_config": Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
        "default_acl": None,  # the bucket's own: private
        "file_overwrite": False,
    }
