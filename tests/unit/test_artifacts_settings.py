"""Artifact store settings: what the operator reads, hands to pods, and the worker reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal_worker.artifacts import (
    LocalArtifactStore,
    StoreSettings,
    StoreSettingsError,
    open_store,
)

MINIO_ENV = {
    "SHOAL_ARTIFACTS": "s3://shoal-artifacts/runs",
    "SHOAL_S3_ENDPOINT": "http://127.0.0.1:9000",
    "SHOAL_S3_REGION": "eu-west-1",
    "SHOAL_S3_PATH_STYLE": "true",
    "SHOAL_S3_VERIFY": "false",
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLETOKEN",
}


def test_no_store_configured_is_none() -> None:
    assert StoreSettings.from_env({}) is None
    assert StoreSettings.from_env({"SHOAL_ARTIFACTS": "  "}) is None


def test_everything_is_read_from_the_environment() -> None:
    settings = StoreSettings.from_env(MINIO_ENV)
    assert settings == StoreSettings(
        url="s3://shoal-artifacts/runs",
        endpoint="http://127.0.0.1:9000",
        region="eu-west-1",
        path_style=True,
        verify=False,
        access_key_id="AKIDEXAMPLE",
        secret_access_key=MINIO_ENV["AWS_SECRET_ACCESS_KEY"],
        session_token=MINIO_ENV["AWS_SESSION_TOKEN"],
    )
    assert (settings.scheme, settings.bucket, settings.prefix) == ("s3", "shoal-artifacts", "runs")


def test_pods_get_the_settings_but_never_the_credentials() -> None:
    settings = StoreSettings.from_env(MINIO_ENV)
    assert settings is not None
    env = settings.to_env()
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert "AWS_ACCESS_KEY_ID" not in env
    for secret in ("AKIDEXAMPLE", MINIO_ENV["AWS_SECRET_ACCESS_KEY"], "EXAMPLETOKEN"):
        assert secret not in str(env)
        assert secret not in repr(settings)
    # What a pod reads back is the same store, its credentials coming from a Secret.
    assert StoreSettings.from_env(env) == StoreSettings(
        url="s3://shoal-artifacts/runs",
        endpoint="http://127.0.0.1:9000",
        region="eu-west-1",
        path_style=True,
        verify=False,
    )


@pytest.mark.parametrize(
    "settings",
    [
        StoreSettings("s3://bucket"),
        StoreSettings("file:///var/lib/shoal"),
        StoreSettings("s3://b.example/a/b", verify="/etc/ssl/ca.pem", path_style=False),
    ],
)
def test_to_env_round_trips(settings: StoreSettings) -> None:
    assert StoreSettings.from_env(settings.to_env()) == settings


def test_path_style_defaults_to_on_with_an_endpoint_only() -> None:
    assert StoreSettings("s3://bucket", endpoint="http://minio:9000").addressing_path_style
    assert not StoreSettings("s3://bucket").addressing_path_style
    assert not StoreSettings(
        "s3://bucket", endpoint="http://x:1", path_style=False
    ).addressing_path_style


@pytest.mark.parametrize(
    ("url", "scheme", "bucket", "prefix"),
    [
        ("s3://bucket", "s3", "bucket", ""),
        ("s3://bucket/", "s3", "bucket", ""),
        ("s3://my.bucket-1/a/b/", "s3", "my.bucket-1", "a/b"),
        ("file:///tmp/store", "file", "", "/tmp/store"),
        ("file://localhost/tmp/store/", "file", "", "/tmp/store"),
        ("/tmp/store", "file", "", "/tmp/store"),
    ],
)
def test_urls(url: str, scheme: str, bucket: str, prefix: str) -> None:
    settings = StoreSettings(url)
    assert (settings.scheme, settings.bucket, settings.prefix) == (scheme, bucket, prefix)


@pytest.mark.parametrize(
    ("env", "named", "problem"),
    [
        ({"SHOAL_ARTIFACTS": "gs://bucket"}, "SHOAL_ARTIFACTS", "unknown scheme gs://"),
        ({"SHOAL_ARTIFACTS": "bucket/prefix"}, "SHOAL_ARTIFACTS", "unknown scheme (none)"),
        ({"SHOAL_ARTIFACTS": "s3://"}, "SHOAL_ARTIFACTS", "the bucket is empty"),
        ({"SHOAL_ARTIFACTS": "s3:///prefix"}, "SHOAL_ARTIFACTS", "the bucket is empty"),
        ({"SHOAL_ARTIFACTS": "s3://My_Bucket"}, "SHOAL_ARTIFACTS", "not a valid bucket name"),
        ({"SHOAL_ARTIFACTS": "s3://bucket/a/../b"}, "SHOAL_ARTIFACTS", "'..' segment"),
        ({"SHOAL_ARTIFACTS": "file://host/x"}, "SHOAL_ARTIFACTS", "a file url has no host"),
        ({"SHOAL_ARTIFACTS": "file:///a/../b"}, "SHOAL_ARTIFACTS", "'..' is not allowed"),
        (
            {"SHOAL_ARTIFACTS": "s3://bucket", "SHOAL_S3_ENDPOINT": "minio:9000"},
            "SHOAL_S3_ENDPOINT",
            "http:// or https://",
        ),
        (
            {"SHOAL_ARTIFACTS": "s3://bucket", "SHOAL_S3_ENDPOINT": "http://u:p@minio:9000"},
            "SHOAL_S3_ENDPOINT",
            "must not contain credentials",
        ),
        (
            {"SHOAL_ARTIFACTS": "s3://bucket", "SHOAL_S3_PATH_STYLE": "maybe"},
            "SHOAL_S3_PATH_STYLE",
            "must be true or false, got 'maybe'",
        ),
        (
            {"SHOAL_ARTIFACTS": "s3://bucket", "SHOAL_S3_REGION": "EU West"},
            "SHOAL_S3_REGION",
            "not a region name",
        ),
        (
            {"SHOAL_ARTIFACTS": "s3://bucket", "AWS_ACCESS_KEY_ID": "AKID"},
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            "give both or neither",
        ),
        (
            {"SHOAL_ARTIFACTS": "/tmp/x", "SHOAL_S3_ENDPOINT": "http://minio:9000"},
            "SHOAL_S3_ENDPOINT",
            "needs an s3:// url",
        ),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], named: str, problem: str) -> None:
    with pytest.raises(StoreSettingsError) as caught:
        StoreSettings.from_env(env)
    assert str(caught.value).startswith(f"artifact store setting {named}: ")
    assert problem in str(caught.value)


def test_bad_settings_in_code_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"setting url: 'ftp://x': unknown scheme ftp://"):
        StoreSettings("ftp://x")
    with pytest.raises(ValueError, match="setting verify: a CA bundle path must not be empty"):
        StoreSettings("s3://bucket", verify=" ")


def test_a_wrong_secret_never_shows_in_an_error() -> None:
    env = {"SHOAL_ARTIFACTS": "s3://bucket", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value-123"}
    with pytest.raises(StoreSettingsError) as caught:
        StoreSettings.from_env(env)
    assert "s3cr3t" not in str(caught.value)


def test_verify_takes_a_ca_bundle_path() -> None:
    env = {"SHOAL_ARTIFACTS": "s3://bucket", "SHOAL_S3_VERIFY": "/etc/ssl/minio-ca.pem"}
    settings = StoreSettings.from_env(env)
    assert settings is not None
    assert settings.verify == "/etc/ssl/minio-ca.pem"
    for raw, expected in (("true", True), ("FALSE", False), ("0", False), ("", True)):
        parsed = StoreSettings.from_env({**env, "SHOAL_S3_VERIFY": raw})
        assert parsed is not None
        assert parsed.verify is expected


def test_a_missing_ca_bundle_is_named_when_the_store_opens(tmp_path: Path) -> None:
    pytest.importorskip("boto3")
    settings = StoreSettings("s3://bucket", verify=str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match=r"verify \(SHOAL_S3_VERIFY\): CA bundle .*missing.pem"):
        open_store(settings)


def test_workflow_overrides_for_s3() -> None:
    base = StoreSettings("s3://shared/runs", endpoint="http://127.0.0.1:9000")
    assert base.with_overrides(bucket=None, prefix=None) is base
    assert base.with_overrides(bucket="team-a", prefix=None).url == "s3://team-a/runs"
    assert base.with_overrides(bucket=None, prefix="/nightly/").url == "s3://shared/nightly"
    both = base.with_overrides(bucket="team-a", prefix="x/y")
    assert both.url == "s3://team-a/x/y"
    assert both.endpoint == base.endpoint


def test_workflow_overrides_nest_inside_a_local_root() -> None:
    base = StoreSettings("file:///var/shoal")
    assert base.with_overrides(bucket="team-a", prefix="p").url == "file:///var/shoal/team-a/p"
    assert base.with_overrides(bucket=None, prefix="p").prefix == "/var/shoal/p"


@pytest.mark.parametrize(
    ("bucket", "prefix", "problem"),
    [
        ("Team_A", None, "setting bucket: 'Team_A' is not a valid bucket name"),
        ("ab", None, "not a valid bucket name"),
        (None, "a/../b", "setting prefix: prefix 'a/../b' has an empty, '.' or '..' segment"),
        (None, "a//b", "empty"),
    ],
)
def test_bad_overrides(bucket: str | None, prefix: str | None, problem: str) -> None:
    with pytest.raises(StoreSettingsError, match=problem.replace("(", r"\(").replace(".", r"\.")):
        StoreSettings("s3://shared").with_overrides(bucket=bucket, prefix=prefix)


def test_open_store_gives_a_local_store_for_a_folder(tmp_path: Path) -> None:
    store = open_store(StoreSettings(str(tmp_path)))
    assert isinstance(store, LocalArtifactStore)
    assert store.describe() == f"file://{tmp_path.resolve()}"
    ref = store.put_bytes("a/b", b"x")
    assert (tmp_path / "a" / "b").read_bytes() == b"x"
    assert store.read_bytes(ref) == b"x"


def test_the_store_describes_itself_without_credentials() -> None:
    pytest.importorskip("boto3")
    settings = StoreSettings.from_env(MINIO_ENV)
    assert settings is not None
    store = open_store(settings)
    assert store.describe() == "s3://shoal-artifacts/runs at http://127.0.0.1:9000"
