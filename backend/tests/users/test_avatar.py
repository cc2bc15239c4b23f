"""Avatar upload: checked by content, size-limited, re-encoded to a small square, served by hash."""

from __future__ import annotations

import asyncio
import io
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

from app.core.images import ImageDecoding
from tests.conftest import AccountFactory, DatabaseTarget, Harness
from tests.processes import app_env, free_port, start_cli, wait_ready


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


def _header_only(fmt: str, width: int, height: int) -> bytes:
    """A file whose header declares `width` × `height` (its pixel data may be missing)."""
    if fmt == "PNG":
        return _png_header_only(width, height)
    if fmt == "GIF":  # one colour compresses to almost nothing
        out = io.BytesIO()
        Image.new("P", (width, height)).save(out, format="GIF")
        return out.getvalue()
    raise AssertionError(fmt)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (_header_only("PNG", 8000, 5000), 413),  # the 40 MP PNG that took 4.7 GB, 8 at a time
        (_header_only("PNG", 4001, 4000), 413),  # just over the 16 MP of a whole decode
        (_header_only("GIF", 8000, 5000), 413),
        (_image("WEBP", (5000, 4000), quality=1), 413),  # 20 MP: WebP is decoded whole
        (_image("JPEG", (9000, 6000), quality=1), 413),  # 54 MP: past even JPEG's budget
    ],
    ids=["png-40mp", "png-16mp-plus", "gif-40mp", "webp-20mp", "jpeg-54mp"],
)
async def test_pixel_budgets_are_checked_before_decoding(
    harness: Harness, make_account: AccountFactory, data: bytes, status: int
) -> None:
    account = await make_account()
    refused = await _upload(harness, account.headers, data)
    assert refused.status_code == status, refused.text
    assert "million pixels" in refused.json()["detail"]


async def test_a_large_photo_is_decoded_reduced_and_accepted(
    harness: Harness, make_account: AccountFactory
) -> None:
    """A 48 MP JPEG (a phone photo) is within budget: decoded at 1/8 scale, not 192 MB."""
    account = await make_account()
    photo = _image("JPEG", (8000, 6000), quality=30)
    uploaded = await _upload(harness, account.headers, photo, "photo.jpg", "image/jpeg")
    assert uploaded.status_code == 200, uploaded.text
    served = await harness.client.get(uploaded.json()["avatar_url"])
    with Image.open(io.BytesIO(served.content)) as image:
        assert image.size == (256, 256)


async def test_uploads_at_once_by_one_user_all_succeed(
    harness: Harness, make_account: AccountFactory
) -> None:
    """Two requests creating the first avatar row at once: one inserts, the other updates."""
    account = await make_account()
    colours = [(i * 30, 10, 200 - i * 20) for i in range(8)]
    uploads = await asyncio.gather(
        *(_upload(harness, account.headers, _image("PNG", color=c)) for c in colours)
    )
    assert [u.status_code for u in uploads] == [200] * 8, [u.text for u in uploads]
    me = await harness.client.get("/api/auth/me", headers=account.headers)
    assert me.json()["avatar_url"] in {u.json()["avatar_url"] for u in uploads}


async def test_decodes_run_a_few_at_a_time() -> None:
    decoding = ImageDecoding(concurrency=2)
    running, most = 0, 0
    lock = threading.Lock()

    def work(data: bytes) -> bytes:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return data

    results = await asyncio.gather(*(decoding.run(work, bytes([i])) for i in range(8)))
    assert results == [bytes([i]) for i in range(8)]
    assert most == 2


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# Bounds for eight concurrent uploads of the largest images accepted (measured: README →
# Security). Without the bounds, eight 40 MP PNGs took a server to 4.7 GB and left 2.9 GB held.
PEAK_BOUND_MIB = 400
KEPT_BOUND_MIB = 64


@pytest.mark.slow
def test_concurrent_large_uploads_stay_bounded_and_memory_comes_back(
    tmp_path: Path, fresh_database: DatabaseTarget
) -> None:
    port = free_port()
    env = app_env(
        tmp_path, fresh_database, PORT=str(port), ADMIN_PASSWORD="avatar-admin-password-1"
    )
    proc = start_cli(["serve"], env)
    base = f"http://127.0.0.1:{port}"
    images = [
        ("big.png", _image("PNG", (4000, 4000), mode="RGBA"), "image/png"),
        ("big.jpg", _image("JPEG", (8000, 6000), quality=30), "image/jpeg"),
    ]
    try:
        wait_ready(base, proc)
        with httpx.Client(base_url=base, timeout=120) as client:
            login = client.post(
                "/api/auth/login",
                json={"username": "admin", "password": "avatar-admin-password-1"},
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            before = _rss_mib(proc.pid)
            samples: list[float] = []
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    samples.append(_rss_mib(proc.pid))
                    time.sleep(0.01)

            def upload(index: int) -> int:
                name, data, kind = images[index % 2]
                response = client.put(
                    "/api/auth/me/avatar", files={"file": (name, data, kind)}, headers=headers
                )
                return response.status_code

            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                with ThreadPoolExecutor(8) as pool:
                    statuses = list(pool.map(upload, range(8)))
            finally:
                done.set()
                sampler.join()
            after = _rss_mib(proc.pid)
        assert statuses == [200] * 8
        peak = max(samples)
        assert peak - before < PEAK_BOUND_MIB, (before, peak, after)
        assert after - before < KEPT_BOUND_MIB, (before, peak, after)
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
