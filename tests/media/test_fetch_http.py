"""Photo downloads over http(s): address checks, redirects, caps, content checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from _media_samples import sample_jpeg

from bkbn_pipelines._errors import ConfigError, FetchError
from bkbn_pipelines.media import FetchPolicy, fetch_photo, normalise_photo, safe_url

LOOPBACK = FetchPolicy(allowed_networks=("127.0.0.0/8", "::1/128"))


PHOTO = sample_jpeg()


def refused(url: str, policy: FetchPolicy | None = None, photo: str = "front.jpg") -> str:
    with pytest.raises(FetchError) as info:
        fetch_photo(url, listing_id="MLS-9", photo=photo, policy=policy)
    message = str(info.value)
    assert info.value.listing_id == "MLS-9" and info.value.photo == photo
    assert message.startswith(f"listing 'MLS-9', photo {photo!r}: ")
    return message


def test_download_through_an_allowed_network(photo_server: str) -> None:
    data = fetch_photo(f"{photo_server}/photo.jpg", listing_id="MLS-9", policy=LOOPBACK)
    assert data == PHOTO
    assert normalise_photo(data, listing_id="MLS-9", photo="photo.jpg").width == 320


def test_allow_private_networks_switch(photo_server: str, photo_server_v6: str) -> None:
    anything = FetchPolicy(allow_private_networks=True)
    assert fetch_photo(f"{photo_server}/octet", listing_id="1", policy=anything) == PHOTO
    assert fetch_photo(f"{photo_server_v6}/untyped", listing_id="1", policy=anything) == PHOTO


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:9/photo.jpg", "a loopback address"),
        ("http://localhost:9/photo.jpg", "a loopback address"),
        ("http://2130706433:9/photo.jpg", "a loopback address"),  # 127.0.0.1 as one number
        ("http://[::1]:9/photo.jpg", "a loopback address"),
        ("http://[::ffff:127.0.0.1]:9/photo.jpg", "a loopback address"),
        ("http://10.0.0.1/photo.jpg", "a private address"),
        ("http://192.168.1.20/photo.jpg", "a private address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://[fe80::1]/photo.jpg", "a link-local address"),
        ("http://0.0.0.0:9/photo.jpg", "an unspecified address"),
        ("http://224.0.0.1/photo.jpg", "a multicast address"),
        ("http://100.64.0.1/photo.jpg", "a reserved address"),
        ("http://240.0.0.1/photo.jpg", "a reserved address"),
    ],
)
def test_default_policy_refuses_non_public_addresses(url: str, kind: str) -> None:
    message = refused(url)
    assert kind in message
    assert "allowed_networks" in message


def test_live_server_on_loopback_is_refused_by_default(photo_server: str) -> None:
    assert "loopback" in refused(f"{photo_server}/photo.jpg")


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.1/photo.jpg",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://[::1]:9/photo.jpg",
    ],
)
def test_redirect_to_a_private_address_is_refused(photo_server: str, target: str) -> None:
    only_this_server = FetchPolicy(allowed_networks=("127.0.0.1/32",))
    message = refused(f"{photo_server}/redirect?to={target}", only_this_server)
    assert "refused to connect" in message


def test_redirect_to_a_host_outside_the_allow_list_is_refused(photo_server: str) -> None:
    port = photo_server.rsplit(":", 1)[1]
    policy = FetchPolicy(allowed_networks=("127.0.0.0/8",), allowed_hosts={"127.0.0.1"})
    url = f"{photo_server}/redirect?to=http://localhost:{port}/photo.jpg"
    assert "host 'localhost' is not in allowed_hosts" in refused(url, policy)
    # the same redirect inside the allow-list is followed
    wide = FetchPolicy(allowed_networks=("127.0.0.0/8", "::1/128"))
    assert fetch_photo(url, listing_id="1", policy=wide) == PHOTO


def test_relative_redirect_is_followed(photo_server: str) -> None:
    assert fetch_photo(f"{photo_server}/relative", listing_id="1", policy=LOOPBACK) == PHOTO


def test_redirect_to_another_scheme_is_refused(photo_server: str) -> None:
    url = f"{photo_server}/redirect?to=file:///etc/passwd"
    assert "redirect to a scheme that is not allowed: file:///etc/passwd" in refused(url, LOOPBACK)


def test_redirect_loop_stops_at_max_redirects(photo_server: str) -> None:
    policy = FetchPolicy(allowed_networks=("127.0.0.0/8",), max_redirects=3)
    assert "more than 3 redirects (max_redirects)" in refused(f"{photo_server}/loop", policy)


def test_http_error_status(photo_server: str) -> None:
    assert f"HTTP 404 from {photo_server}/missing" in refused(f"{photo_server}/missing", LOOPBACK)


def test_html_content_type_is_refused(photo_server: str) -> None:
    assert "content type 'text/html' is not accepted" in refused(f"{photo_server}/html", LOOPBACK)


def test_accepted_content_types_is_a_setting(photo_server: str) -> None:
    images_only = FetchPolicy(allowed_networks=("127.0.0.0/8",), accepted_content_types={"image/*"})
    assert "'application/octet-stream' is not accepted" in refused(
        f"{photo_server}/octet", images_only
    )
    assert fetch_photo(f"{photo_server}/photo.jpg", listing_id="1", policy=images_only) == PHOTO


def test_body_over_the_limit_stops_the_download(photo_server: str) -> None:
    small = FetchPolicy(allowed_networks=("127.0.0.0/8",), max_bytes=50_000)
    message = refused(f"{photo_server}/big", small)
    assert "over the limit of 50,000 bytes (max_bytes)" in message
    message = refused(f"{photo_server}/declared-big", small)
    assert "999,999,999 bytes, over the limit of 50,000 bytes (max_bytes)" in message


def test_compressed_body_is_capped_after_decompression(photo_server: str) -> None:
    small = FetchPolicy(allowed_networks=("127.0.0.0/8",), max_bytes=100_000)
    assert "(max_bytes)" in refused(f"{photo_server}/gzip-bomb", small)


def test_total_deadline_stops_a_slow_drip(photo_server: str) -> None:
    policy = FetchPolicy(allowed_networks=("127.0.0.0/8",), total_timeout=0.5, read_timeout=5)
    assert "took longer than 0.5 s (total_timeout)" in refused(f"{photo_server}/drip", policy)


def test_read_timeout_stops_a_stalled_body(photo_server: str) -> None:
    policy = FetchPolicy(allowed_networks=("127.0.0.0/8",), read_timeout=0.3)
    assert f"timed out fetching {photo_server}/stall" in refused(f"{photo_server}/stall", policy)


def test_messages_never_carry_query_strings_or_user_info(photo_server: str) -> None:
    host = photo_server.removeprefix("http://")
    url = f"http://agent:hunter2@{host}/missing?X-Amz-Signature=s3cr3t&token=abc"
    message = refused(url, LOOPBACK, photo="p.jpg")
    assert "hunter2" not in message and "s3cr3t" not in message and "token" not in message
    assert f"HTTP 404 from http://{host}/missing?..." in message
    assert safe_url("https://u:p@h.example/a.jpg?sig=1#frag") == "https://h.example/a.jpg?..."


def test_https_connects_to_the_checked_address_and_verifies_the_name(tls_server) -> None:
    base, cert, other_cert = tls_server
    trusted = FetchPolicy(allowed_networks=("127.0.0.0/8", "::1/128"), ca_bundle=str(cert))
    assert fetch_photo(f"{base}/photo.jpg", listing_id="1", policy=trusted) == PHOTO

    wrong_ca = FetchPolicy(allowed_networks=("127.0.0.0/8", "::1/128"), ca_bundle=str(other_cert))
    assert "TLS verification failed" in refused(f"{base}/photo.jpg", wrong_ca)
    system_ca = FetchPolicy(allowed_networks=("127.0.0.0/8", "::1/128"))
    assert "TLS verification failed" in refused(f"{base}/photo.jpg", system_ca)


def test_scheme_not_allowed() -> None:
    policy = FetchPolicy(allowed_schemes={"https"})
    assert "scheme 'http' is not allowed (allowed_schemes: https)" in refused(
        "http://photos.example/a.jpg", policy
    )
    assert "scheme 'ftp' is not allowed" in refused("ftp://photos.example/a.jpg")


def test_policy_is_checked_and_frozen() -> None:
    with pytest.raises(ConfigError, match="max_bytes"):
        FetchPolicy(max_bytes=0)
    with pytest.raises(ConfigError, match="allowed_networks"):
        FetchPolicy(allowed_networks=("not-a-network",))
    with pytest.raises(ConfigError, match="ca_bundle"):
        fetch_photo(
            "https://photos.example/a.jpg",
            listing_id="1",
            policy=FetchPolicy(ca_bundle="/nonexistent/ca.pem"),
        )
    loose = FetchPolicy(allowed_networks=["10.0.0.0/8"], local_roots="/srv/photos")
    assert loose.allowed_networks == ("10.0.0.0/8",)
    assert loose.local_roots == (Path("/srv/photos"),)
    assert hash(loose) == hash(
        FetchPolicy(allowed_networks=("10.0.0.0/8",), local_roots="/srv/photos")
    )
    policy = FetchPolicy(storage_options={"secret": "aws-secret-value"})
    assert "aws-secret-value" not in repr(policy)
    with pytest.raises(AttributeError):
        policy.max_bytes = 1  # type: ignore[misc]


def test_malformed_url(photo_server: str) -> None:
    assert "malformed URL" in refused("http://[::1/a", photo="a")
    assert "could not fetch" in refused(
        f"{photo_server}/bad-redirect", LOOPBACK, photo="bad-redirect"
    )
    assert "URL has no host" in refused("http:///photo.jpg", photo="photo.jpg")


def test_connection_goes_to_the_address_that_was_checked(
    photo_server: str, photo_server_seen: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rebinding resolver: the first answer passes the check, later ones point inside.
    import socket

    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"] + ["10.0.0.1"] * 10)

    def rebinding(host, port, *args, **kwargs):
        if host == "photos.test":
            return real(next(answers), port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    port = photo_server.rsplit(":", 1)[1]
    policy = FetchPolicy(allowed_networks=("127.0.0.1/32",), connect_timeout=2)
    data = fetch_photo(f"http://photos.test:{port}/photo.jpg", listing_id="1", policy=policy)
    assert data == PHOTO
    assert photo_server_seen[-1] == f"photos.test:{port}"  # the name still goes in Host
