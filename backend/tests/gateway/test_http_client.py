"""The upstream HTTP client against real loopback servers that write exactly the bytes each case needs."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.gateway.http_client import (
    DECODE_CHUNK,
    MAX_HEADER_BYTES,
    HttpClient,
    ResponseError,
    prepare,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


@dataclass
class Server:
    """A loopback server; `handler` serves one connection (its requests in turn)."""

    handler: Handler
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length) if length else b""
        self.requests.append(head + body)
        return head + body

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def url(self, path: str = "/v1/x", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> Server:
        server = Server(handler)
        listener = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=ssl_context)
        server.port = listener.sockets[0].getsockname()[1]
        servers.append(listener)
        return server

    yield start
    for listener in servers:
        listener.close()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    http = HttpClient(lambda: True)
    yield http
    await http.close()


def ok(body: bytes, *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def keep_answering(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
) -> None:
    while await server.read_request(reader) is not None:
        writer.write(ok(b'{"n": %d}' % len(server.requests)))
        await writer.drain()


async def test_connections_are_kept_and_reused(serve, client: HttpClient) -> None:
    server = await serve(keep_answering)
    for n in (1, 2, 3):
        response = await client.request("POST", server.url(), {"Authorization": "Bearer k"}, b"{}")
        assert response.status == 200
        assert await response.read(1000) == b'{"n": %d}' % n
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/x HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer k\r\n" in first
    assert b"\r\nContent-Length: 2\r\n" in first
    assert first.endswith(b"\r\n\r\n{}")
    assert f"\r\nHost: 127.0.0.1:{server.port}\r\n".encode() in first


async def test_concurrent_requests_each_get_their_own_connection(serve, client: HttpClient) -> None:
    async def slow(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        while (request := await server.read_request(reader)) is not None:
            await asyncio.sleep(0.05)
            writer.write(ok(request.rsplit(b"\r\n\r\n", 1)[1]))

    server = await serve(slow)

    async def one(n: int) -> bytes:
        response = await client.request("POST", server.url(), {}, b"%d" % n)
        return await response.read(100)

    answers = await asyncio.gather(*(one(n) for n in range(10)))
    assert answers == [b"%d" % n for n in range(10)]
    assert server.connections == 10
    await asyncio.gather(*(one(n) for n in range(10)))
    assert server.connections == 10  # all ten were kept


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"hello world",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", b"until the end"),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close", b"until close"),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    ],
)
async def test_body_framings(serve, client: HttpClient, answer: bytes, body: bytes) -> None:
    async def once(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await server.read_request(reader)
        writer.write(answer)
        await writer.drain()
        if b"Content-Length" not in answer and b"chunked" not in answer and b" 204 " not in answer:
            writer.close()  # the body ends with the connection
        else:
            await reader.read()

    server = await serve(once)
    response = await client.request("GET", server.url(), {})
    assert response.status in (200, 204)
    assert await response.read(1 << 20) == body


async def test_a_stream_arrives_as_it_is_sent(serve, client: HttpClient) -> None:
    release = asyncio.Event()

    async def streaming(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await server.read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        writer.write(b"7\r\ndata: 1\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"7\r\ndata: 2\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()

    server = await serve(streaming)
    response = await client.request("POST", server.url(), {}, b"{}")
    assert response.headers["content-type"] == "text/event-stream"
    assert response.content_length is None
    assert await response.readany() == b"data: 1"  # before the rest was even written
    release.set()
    assert await response.readany() == b"data: 2"
    assert await response.readany() == b""


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_answers_are_decoded(serve, client: HttpClient, encoding: str) -> None:
    plain = b'{"text": "' + b"abc" * 5000 + b'"}'
    packed = gzip.compress(plain) if encoding == "gzip" else zlib.compress(plain)

    async def compressed(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await server.read_request(reader)
        writer.write(ok(packed, f"Content-Encoding: {encoding}"))
        await reader.read()

    server = await serve(compressed)
    response = await client.request("GET", server.url(), {})
    assert response.content_length is None  # the declared length is the compressed one
    assert await response.read(1 << 20) == plain
    assert b"Accept-Encoding: gzip, deflate" in server.requests[0]


async def test_a_compression_bomb_is_decoded_in_bounded_pieces(serve, client: HttpClient) -> None:
    packed = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB from ~64 KiB

    async def bomb(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await server.read_request(reader)
        writer.write(ok(packed, "Content-Encoding: gzip"))
        await reader.read()

    server = await serve(bomb)
    response = await client.request("GET", server.url(), {})
    sizes = [len(await response.readany()) for _ in range(20)]
    assert max(sizes) <= DECODE_CHUNK
    assert sum(sizes) == 20 * DECODE_CHUNK
    response.close()


async def test_a_kept_connection_closed_by_the_server_is_retried_once(
    serve, client: HttpClient
) -> None:
    """The server answers one request per connection but says nothing about closing it."""

    async def one_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await server.read_request(reader)
        writer.write(ok(b"fine"))
        await writer.drain()

    server = await serve(one_per_connection)
    for _ in range(3):
        response = await client.request("POST", server.url(), {}, b"{}")
        assert await response.read(100) == b"fine"
        await asyncio.sleep(0.02)  # the close reaches the client while the connection is idle
    assert len(server.requests) == 3

    # The close racing the reuse: the request goes out on the dead connection and is retried.
    async def quiet_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await server.read_request(reader)
        writer.write(ok(b"fine"))
        await writer.drain()
        await asyncio.sleep(0.05)

    racing = await serve(quiet_close)
    response = await client.request("POST", racing.url(), {}, b"{}")
    assert await response.read(100) == b"fine"
    await asyncio.sleep(0.15)
    response = await client.request("POST", racing.url(), {}, b"{}")
    assert await response.read(100) == b"fine"
    assert len(racing.requests) == 2
    assert racing.connections == 2


async def test_a_fresh_connection_closed_before_an_answer_is_an_error_not_a_retry(
    serve, client: HttpClient
) -> None:
    async def hang_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await server.read_request(reader)

    server = await serve(hang_up)
    with pytest.raises(ResponseError, match="closed the connection"):
        await client.request("POST", server.url(), {}, b"{}")
    assert len(server.requests) == 1


async def test_an_answer_cut_off_mid_body_is_an_error(serve, client: HttpClient) -> None:
    async def cut(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()

    server = await serve(cut)
    response = await client.request("GET", server.url(), {})
    with pytest.raises(ResponseError, match="mid-answer"):
        await response.read(1000)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\n",
            "too many or too large",
        ),
        (
            b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(200)) + b"\r\n",
            "too many",
        ),
        (b"SMTP ready\r\n\r\n", "not valid HTTP"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 1\r\n\r\nx",
            "unknown encoding",
        ),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "switched protocols",
        ),
    ],
)
async def test_broken_answers_are_errors(
    serve, client: HttpClient, answer: bytes, message: str
) -> None:
    async def broken(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await server.read_request(reader)
        writer.write(answer)
        await writer.drain()
        await reader.read()

    server = await serve(broken)
    with pytest.raises(ResponseError, match=message):
        await client.request("GET", server.url(), {})


async def test_a_slow_reader_pauses_the_upstream(serve, client: HttpClient) -> None:
    """Unread data stops being read from the socket; the server's writes then block."""
    total = 16 * 1024 * 1024
    written = 0
    blocked = asyncio.Event()

    async def big(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        nonlocal written
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        block = b"x" * 65536
        while written < total:
            writer.write(block)
            written += len(block)
            try:
                await asyncio.wait_for(writer.drain(), 0.3)
            except TimeoutError:
                blocked.set()
                await writer.drain()
        await reader.read()

    server = await serve(big)
    response = await client.request("GET", server.url(), {})
    await asyncio.wait_for(blocked.wait(), 10)
    assert written < total // 2  # held back by the reader, not buffered in full
    received = 0
    while chunk := await response.readany():
        received += len(chunk)
    assert received == total


async def test_a_response_closed_early_drops_its_connection(serve, client: HttpClient) -> None:
    async def endless(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        while await server.read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
            await writer.drain()

    server = await serve(endless)
    response = await client.request("POST", server.url(), {}, b"{}")
    assert await response.readany() == b"abc"
    response.close()
    response = await client.request("POST", server.url(), {}, b"{}")
    assert await response.readany() == b"abc"
    response.close()
    assert server.connections == 2


async def test_idle_connections_expire_and_unasked_data_drops_one(serve) -> None:
    client = HttpClient(lambda: True, keepalive_timeout=0.05)
    try:
        server = await serve(keep_answering)
        await (await client.request("GET", server.url(), {})).read(100)
        await asyncio.sleep(0.1)
        await (await client.request("GET", server.url(), {})).read(100)
        assert server.connections == 2  # the idle one had expired

        async def chatty(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
        ) -> None:
            await server.read_request(reader)
            writer.write(ok(b"one"))
            await writer.drain()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra")  # never asked for
            await writer.drain()
            await server.read_request(reader)
            writer.write(ok(b"wrong"))

        other = await serve(chatty)
        assert await (await client.request("GET", other.url(), {})).read(100) == b"one"
        await asyncio.sleep(0.02)
        # The connection that carried the extra answer was dropped: a new one answers afresh.
        assert await (await client.request("GET", other.url(), {})).read(100) == b"one"
        assert other.connections == 2

        async def pipelined(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
        ) -> None:
            await server.read_request(reader)
            writer.write(ok(b"one") + ok(b"extra"))  # both in one packet
            await writer.drain()
            await server.read_request(reader)
            writer.write(ok(b"wrong"))

        third = await serve(pipelined)
        for _ in range(2):
            assert await (await client.request("GET", third.url(), {})).read(100) == b"one"
        assert third.connections == 2
    finally:
        await client.close()


@pytest.mark.parametrize(
    "headers", [{"Authorization": "Bearer a\r\nX-Injected: 1"}, {"X\nY": "1"}, {"A": "b\0"}]
)
def test_a_header_that_would_split_the_request_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="line break"):
        prepare("POST", "http://127.0.0.1:1/v1", headers)


def test_the_request_target_and_host() -> None:
    prepared = prepare("POST", "https://api.example.com/v1/chat/completions", {})
    assert prepared.key == ("https", "api.example.com", 443)
    assert prepared.tls
    assert prepared.head.startswith(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.com\r\n"
    )
    ipv6 = prepare("GET", "http://[::1]:8080/v1/models?x=1", {})
    assert ipv6.head.startswith(b"GET /v1/models?x=1 HTTP/1.1\r\nHost: [::1]:8080\r\n")
    assert ipv6.host == "::1"
    assert ipv6.literal == ipaddress.ip_address("::1")
    with pytest.raises(ValueError, match="not an http"):
        prepare("GET", "ftp://example.com/", {})


def _certificate(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for a self-signed certificate for `name`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_tls_checks_the_certificate_against_the_host_name(serve, tmp_path: Path) -> None:
    server_context, client_context = _certificate(tmp_path, "localhost")
    server = await serve(keep_answering, ssl_context=server_context)
    client = HttpClient(lambda: True, ssl_context=client_context)
    try:
        response = await client.request("GET", server.url(scheme="https", host="localhost"), {})
        assert await response.read(100) == b'{"n": 1}'
        await (await client.request("GET", server.url(scheme="https", host="localhost"), {})).read(
            100
        )
        assert server.connections == 1  # kept alive over TLS too
        with pytest.raises(ssl.SSLCertVerificationError):  # the certificate is not for 127.0.0.1
            await client.request("GET", server.url(scheme="https"), {})
    finally:
        await client.close()
    untrusting = HttpClient(lambda: True)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await untrusting.request("GET", server.url(scheme="https", host="localhost"), {})
    finally:
        await untrusting.close()


async def test_connecting_is_bounded_by_the_connect_timeout(serve, client: HttpClient) -> None:
    """A server that accepts TCP but never answers the TLS handshake."""

    async def silent(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await reader.read()

    server = await serve(silent)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await client.request("GET", server.url(scheme="https"), {}, connect_timeout=0.2)
    assert loop.time() - started < 2


async def test_nothing_listening_is_an_os_error(client: HttpClient) -> None:
    with pytest.raises(ConnectionRefusedError):
        await client.request("GET", "http://127.0.0.1:9/", {})  # discard port: nothing there
