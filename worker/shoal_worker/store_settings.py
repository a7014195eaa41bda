"""Where artifacts live: one settings object, read from the environment, passed to pods.

The operator reads ``SHOAL_ARTIFACTS`` and friends from its own environment, applies a
workflow's bucket/prefix override and hands ``to_env()`` to every pod; the worker reads
them back with ``from_env``. Credentials never travel that way: pods get
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` from a Secret, and ``repr()`` hides them.

Standard library only: the worker imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from .records import Record, field

ENV_URL = "SHOAL_ARTIFACTS"
ENV_ENDPOINT = "SHOAL_S3_ENDPOINT"
ENV_REGION = "SHOAL_S3_REGION"
ENV_PATH_STYLE = "SHOAL_S3_PATH_STYLE"
ENV_VERIFY = "SHOAL_S3_VERIFY"
ENV_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
ENV_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
ENV_SESSION_TOKEN = "AWS_SESSION_TOKEN"

# The environment variable that sets each field, for error messages from from_env.
_ENV_OF = {
    "url": ENV_URL,
    "endpoint": ENV_ENDPOINT,
    "region": ENV_REGION,
    "path_style": ENV_PATH_STYLE,
    "verify": ENV_VERIFY,
    "access_key_id": ENV_ACCESS_KEY_ID,
    "secret_access_key": ENV_SECRET_ACCESS_KEY,
    "session_token": ENV_SESSION_TOKEN,
}

# S3's bucket naming rules (MinIO applies the same ones).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z0-9-]{1,64}")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class StoreSettingsError(ValueError):
    """A setting is invalid; ``field`` names it (a dataclass field or an env variable)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"artifact store setting {field}: {problem}")
        self.field = field
        self.problem = problem


class StoreSettings(Record):
    """An artifact store: ``s3://bucket/prefix`` or ``file:///abs/path``, plus S3 options.

    A bare absolute path means ``file://``. Credentials left ``None`` use boto3's default
    chain (environment, shared config, IRSA, instance metadata).
    """

    url: str
    endpoint: str | None = None
    region: str | None = None
    path_style: bool | None = None
    verify: bool | str = True
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _parse_url(self.url)
        if self.endpoint is not None:
            _check_endpoint(self.endpoint)
        if self.region is not None and not _REGION.fullmatch(self.region):
            raise StoreSettingsError("region", f"{self.region!r} is not a region name")
        if isinstance(self.verify, str) and not self.verify.strip():
            raise StoreSettingsError("verify", "a CA bundle path must not be empty")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise StoreSettingsError(
                "access_key_id/secret_access_key", "give both or neither (one alone is unusable)"
            )
        if self.session_token is not None and self.access_key_id is None:
            raise StoreSettingsError("session_token", "needs access_key_id and secret_access_key")
        if self.scheme == "file" and self.endpoint is not None:
            raise StoreSettingsError("endpoint", "an S3 endpoint needs an s3:// url")

    # -- what the url means ---------------------------------------------------------------

    @property
    def scheme(self) -> str:
        """``"s3"`` or ``"file"``."""
        return _parse_url(self.url)[0]

    @property
    def bucket(self) -> str:
        """The S3 bucket ("" for a file store)."""
        return _parse_url(self.url)[1]

    @property
    def prefix(self) -> str:
        """Key prefix inside the bucket, without slashes at either end ("" for none).

        For a file store: the absolute root folder.
        """
        return _parse_url(self.url)[2]

    @property
    def addressing_path_style(self) -> bool:
        """Path-style addressing (``endpoint/bucket/key``): the default with an endpoint."""
        return self.path_style if self.path_style is not None else self.endpoint is not None

    # -- the environment --------------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StoreSettings | None:
        """Settings from ``SHOAL_ARTIFACTS`` and friends; None when no store is configured.

        Errors name the environment variable (``StoreSettingsError``, a ValueError).
        """
        url = env.get(ENV_URL, "").strip()
        if not url:
            return None

        def text(name: str) -> str | None:
            return env.get(name, "").strip() or None

        try:
            return cls(
                url=url,
                endpoint=text(ENV_ENDPOINT),
                region=text(ENV_REGION),
                path_style=_parse_bool(ENV_PATH_STYLE, text(ENV_PATH_STYLE)),
                verify=_parse_verify(text(ENV_VERIFY)),
                access_key_id=text(ENV_ACCESS_KEY_ID),
                secret_access_key=text(ENV_SECRET_ACCESS_KEY),
                session_token=text(ENV_SESSION_TOKEN),
            )
        except StoreSettingsError as err:
            names = "/".join(_ENV_OF.get(part, part) for part in err.field.split("/"))
            raise StoreSettingsError(names, err.problem) from None

    def to_env(self) -> dict[str, str]:
        """The environment a pod needs to open this store, WITHOUT credentials.

        ``StoreSettings.from_env(s.to_env())`` gives ``s`` back minus its credentials.
        """
        env = {ENV_URL: self.url}
        if self.endpoint is not None:
            env[ENV_ENDPOINT] = self.endpoint
        if self.region is not None:
            env[ENV_REGION] = self.region
        if self.path_style is not None:
            env[ENV_PATH_STYLE] = "true" if self.path_style else "false"
        if self.verify is not True:
            env[ENV_VERIFY] = "false" if self.verify is False else str(self.verify)
        return env

    def with_overrides(self, *, bucket: str | None, prefix: str | None) -> StoreSettings:
        """The same store with a workflow's own bucket and/or prefix.

        For S3, ``bucket`` replaces the bucket and ``prefix`` the prefix. A file store has
        no buckets, so both nest under its root (``root/bucket/prefix``): a workflow that
        names a bucket still runs locally, and never writes outside the root.
        """
        if bucket is None and prefix is None:
            return self
        if bucket is not None and not _BUCKET.fullmatch(bucket):
            raise StoreSettingsError("bucket", _bucket_problem(bucket))
        clean_prefix = None if prefix is None else _clean_prefix("prefix", prefix)
        scheme, old_bucket, old_prefix = _parse_url(self.url)
        if scheme == "file":
            parts = [old_prefix, bucket or "", clean_prefix or ""]
            return self.replace(url="file://" + "/".join(p for p in parts if p))
        new_bucket = bucket if bucket is not None else old_bucket
        new_prefix = clean_prefix if clean_prefix is not None else old_prefix
        url = f"s3://{new_bucket}/{new_prefix}" if new_prefix else f"s3://{new_bucket}"
        return self.replace(url=url)


def _parse_url(url: str) -> tuple[str, str, str]:
    """(scheme, bucket, prefix) for s3; ("file", "", root) for a folder."""
    if not isinstance(url, str) or not url.strip():
        raise StoreSettingsError("url", "must be s3://bucket[/prefix] or file:///absolute/path")
    if url.startswith("/"):
        return "file", "", _clean_root(url)
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StoreSettingsError("url", f"{url!r}: a file url has no host (file:///path)")
        return "file", "", _clean_root(parts.path)
    if parts.scheme == "s3":
        if parts.query or parts.fragment:
            raise StoreSettingsError("url", f"{url!r}: an s3 url has no ?query or #fragment")
        if not parts.netloc:
            raise StoreSettingsError("url", f"{url!r}: the bucket is empty (s3://bucket/prefix)")
        if not _BUCKET.fullmatch(parts.netloc):
            raise StoreSettingsError("url", f"{url!r}: {_bucket_problem(parts.netloc)}")
        return "s3", parts.netloc, _clean_prefix("url", parts.path)
    raise StoreSettingsError(
        "url",
        f"{url!r}: unknown scheme {parts.scheme + '://' if parts.scheme else '(none)'}; "
        "use s3://bucket[/prefix] or file:///absolute/path",
    )


def _clean_root(path: str) -> str:
    if not path.startswith("/"):
        raise StoreSettingsError("url", f"{path!r}: a file store needs an absolute path")
    if ".." in PurePosixPath(path).parts:
        raise StoreSettingsError("url", f"{path!r}: '..' is not allowed")
    return str(PurePosixPath(path))


def _clean_prefix(name: str, prefix: str) -> str:
    stripped = prefix.strip("/")
    segments = stripped.split("/") if stripped else []
    if any(s in ("", ".", "..") for s in segments):
        raise StoreSettingsError(name, f"prefix {prefix!r} has an empty, '.' or '..' segment")
    return stripped


def _bucket_problem(bucket: str) -> str:
    return (
        f"{bucket!r} is not a valid bucket name (3 to 63 characters: lowercase letters, "
        "digits, '.' and '-', starting and ending with a letter or digit)"
    )


def _check_endpoint(endpoint: str) -> None:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StoreSettingsError(
            "endpoint", f"{endpoint!r} must be an http:// or https:// URL with a host"
        )
    if "@" in parts.netloc:
        raise StoreSettingsError("endpoint", "must not contain credentials (user:password@)")


def _parse_bool(name: str, raw: str | None) -> bool | None:
    if raw is None:
        return None
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise StoreSettingsError(name, f"must be true or false, got {raw!r}")


def _parse_verify(raw: str | None) -> bool | str:
    """true/false, or anything else: the path of a CA bundle."""
    if raw is None or raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    return raw
