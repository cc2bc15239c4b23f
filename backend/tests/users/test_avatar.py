"""Avatar upload: checked by content, size-limited, re-encoded to a small square, served by hash."""

from __future__ import annotations

import io
import struct
import zlib

import httpx
from PIL import Image

from tests.conftest import AccountFactory, Harness


def _image(
    fmt: str,
    size: tuple[int, int] = (600, 400),
    mode: str = "RGB",
    color: tuple[int, int, int] = (200, 30, 30),
    **save: object,
) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else (*color, 128)).save(out, format=fmt, **save)
    return out.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge size in a few bytes (a decompression bomb's opening)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


async def _upload(
    harness: Harness,
    headers: dict[str, str],
    data: bytes,
    name: str = "me.png",
    kind: str = "image/png",
) -> httpx.Response:
    return await harness.client.put(
        "/api/auth/me/avatar", files={"file": (name, data, kind)}, headers=headers
    )


async def test_an_upload_is_re_encoded_to_a_square_and_served_by_its_hash(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # camera maker: must not survive re-encoding
    exif[0x0112] = 6  # "rotate 90°": the stored image is upright
    original = _image("JPEG", (600, 300), exif=exif.tobytes())
    uploaded = await _upload(harness, account.headers, original, "photo.jpg", "image/jpeg")
    assert uploaded.status_code == 200, uploaded.text
    url = uploaded.json()["avatar_url"]
    assert url.startswith("/api/avatars/")
    assert url.endswith(".webp")
    me = await harness.client.get("/api/auth/me", headers=account.headers)
    assert me.json()["avatar_url"] == url

    served = await harness.client.get(url)  # no sign-in: an <img> sends no token
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/webp"
    assert "immutable" in served.headers["cache-control"]
    assert served.content != original
    assert b"SecretCam" not in served.content
    with Image.open(io.BytesIO(served.content)) as image:
        assert (image.format, image.size) == ("WEBP", (256, 256))
        assert not image.getexif()


async def test_every_common_format_is_accepted(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    urls = set()
    for data in (
        _image("PNG", mode="RGBA"),
        _image("WEBP", color=(0, 120, 0)),
        _image("GIF", (64, 64), color=(0, 0, 200)),
        _image("PNG", (1, 1), color=(250, 250, 0)),
    ):
        uploaded = await _upload(harness, account.headers, data)
        assert uploaded.status_code == 200, uploaded.text
        urls.add(uploaded.json()["avatar_url"])
    assert len(urls) == 4


async def test_two_people_may_upload_the_same_picture(
    harness: Harness, make_account: AccountFactory
) -> None:
    picture = _image("PNG")
    urls = []
    for _ in range(2):
        account = await make_account()
        uploaded = await _upload(harness, account.headers, picture)
        assert uploaded.status_code == 200, uploaded.text
        urls.append(uploaded.json()["avatar_url"])
    assert urls[0] == urls[1]
    assert (await harness.client.get(urls[0])).status_code == 200


async def test_a_new_avatar_is_a_new_url_and_the_old_one_is_gone(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    first = (await _upload(harness, account.headers, _image("PNG"))).json()["avatar_url"]
    second = (
        await _upload(harness, account.headers, _image("PNG", (300, 300), mode="RGBA"))
    ).json()["avatar_url"]
    assert first != second
    assert (await harness.client.get(first)).status_code == 404
    assert (await harness.client.get(second)).status_code == 200
    with Image.open(io.BytesIO((await harness.client.get(second)).content)) as image:
        assert image.mode == "RGBA"  # transparency kept

    removed = await harness.client.delete("/api/auth/me/avatar", headers=account.headers)
    assert removed.json()["avatar_url"] is None
    assert (await harness.client.get(second)).status_code == 404


async def test_non_images_oversized_files_and_bombs_are_refused_and_change_nothing(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    kept = (await _upload(harness, account.headers, _image("PNG"))).json()["avatar_url"]
    refusals = [
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", 415),
        (b"%PDF-1.4 not an image", 415),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 415),  # a PNG signature, nothing behind it
        (_image("BMP"), 415),  # an image, but not one of the accepted formats
        (_image("TIFF"), 415),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024), 413),
        (_png_header_only(9000, 9000), 413),  # 81 million pixels
        (_png_header_only(60000, 60000), 413),  # Pillow's own bomb limit
        (b"", 415),
    ]
    for data, status in refusals:
        refused = await _upload(harness, account.headers, data)
        assert refused.status_code == status, (data[:20], refused.text)
    me = await harness.client.get("/api/auth/me", headers=account.headers)
    assert me.json()["avatar_url"] == kept
    no_file = await harness.client.put("/api/auth/me/avatar", headers=account.headers)
    assert no_file.status_code == 422


async def test_avatar_addresses_are_checked(harness: Harness, make_account: AccountFactory) -> None:
    await make_account()
    assert (await harness.client.get("/api/avatars/" + "0" * 64 + ".webp")).status_code == 404
    assert (await harness.client.get("/api/avatars/../../etc/passwd.webp")).status_code == 404
    assert (await harness.client.get("/api/avatars/XYZ.webp")).status_code == 422
    anonymous = await harness.client.put(
        "/api/auth/me/avatar", files={"file": ("a.png", _image("PNG"))}
    )
    assert anonymous.status_code == 401
