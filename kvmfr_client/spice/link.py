"""The SPICE link handshake: one per channel, over TCP or a UNIX socket.

Client sends SpiceLinkHeader + SpiceLinkMess + caps; the server answers with its RSA key and caps; the
client sends the auth mechanism and the ticket (password encrypted with RSA-OAEP/SHA-1); the server
answers with a link result.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import protocol as P
from .errors import (SpiceAuthError, SpiceConnectError, SpiceLinkError, SpiceProtocolError,
                     SpiceServerGone, SpiceVersionError)

log = logging.getLogger(__name__)

COMMON_CAPS = (P.CAP_PROTOCOL_AUTH_SELECTION, P.CAP_AUTH_SPICE, P.CAP_MINI_HEADER)

_LINK_RESULT_TEXT = {
    P.LinkResult.ERROR: "the server reported a generic link error",
    P.LinkResult.INVALID_MAGIC: "the server did not accept our link header (not a SPICE port?)",
    P.LinkResult.INVALID_DATA: "the server rejected our link message as invalid",
    P.LinkResult.VERSION_MISMATCH: "the server speaks another SPICE protocol version",
    P.LinkResult.NEED_SECURED: "the server wants a TLS connection, which this client does not support;"
                               " give QEMU a plain -spice port",
    P.LinkResult.NEED_UNSECURED: "the server wants an unsecured connection",
    P.LinkResult.PERMISSION_DENIED: "the server refused the password",
    P.LinkResult.BAD_CONNECTION_ID: "the server does not know our session id (it restarted?)",
    P.LinkResult.CHANNEL_NOT_AVAILABLE: "the server does not offer this channel",
}


@dataclass(frozen=True)
class Address:
    """Where the SPICE server listens: TCP host:port, or a UNIX socket path when ``port`` is 0."""

    host: str
    port: int

    @property
    def is_unix(self) -> bool:
        return self.port == 0

    def __str__(self) -> str:
        return f"unix:{self.host}" if self.is_unix else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> "Address":
        """``HOST:PORT``, ``unix:/path`` or a path containing ``/`` (a UNIX socket)."""
        if text.startswith("unix:"):
            return cls(text[5:], 0)
        if "/" in text:
            return cls(text, 0)
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"expected HOST:PORT or a socket path, got {text!r}")
        try:
            number = int(port)
        except ValueError:
            raise ValueError(f"port must be a number, got {port!r}") from None
        if not 0 <= number <= 65535:
            raise ValueError(f"port must be 0..65535, got {number}")
        return cls(host.strip("[]"), number)


@dataclass
class Link:
    """A linked channel: its streams and what both sides agreed on."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    channel_type: int
    channel_id: int
    mini_header: bool
    common_caps: list[int] = field(default_factory=list)
    channel_caps: list[int] = field(default_factory=list)


async def open_stream(address: Address, timeout: float = 5.0):
    try:
        if address.is_unix:
            coro = asyncio.open_unix_connection(address.host)
        else:
            coro = asyncio.open_connection(address.host, address.port)
        reader, writer = await asyncio.wait_for(coro, timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise SpiceConnectError(f"no SPICE server at {address}: {reason}; is QEMU running with"
                                f" -spice {'unix=on,addr=' + address.host if address.is_unix else 'port=' + str(address.port)}?"
                                ) from exc
    sock = writer.get_extra_info("socket")
    if sock is not None and not address.is_unix:
        import socket
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


def encrypt_ticket(pub_key_der: bytes, password: str) -> bytes:
    """RSA-OAEP (SHA-1, MGF1-SHA-1, empty label) of the password and its NUL terminator."""
    data = password.encode() + b"\0"
    if len(data) - 1 > P.MAX_PASSWORD_LENGTH:
        raise SpiceAuthError(f"password is {len(data) - 1} bytes; SPICE allows at most"
                             f" {P.MAX_PASSWORD_LENGTH}", P.LinkResult.PERMISSION_DENIED)
    try:
        key = serialization.load_der_public_key(pub_key_der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SpiceProtocolError(f"server public key is not a valid DER RSA key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SpiceProtocolError(f"server public key is {type(key).__name__}, expected RSA")
    try:
        return key.encrypt(data, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(),
                                              label=None))
    except ValueError:  # a key too small for the padded ticket
        raise SpiceProtocolError(f"server public key of {key.key_size} bits is too small for the"
                                 " SPICE ticket") from None


async def _read(reader: asyncio.StreamReader, size: int, what: str, address: Address) -> bytes:
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise SpiceServerGone(f"SPICE server at {address} closed the connection during the link"
                              f" ({what})") from None
    except ConnectionError as exc:
        raise SpiceServerGone(f"SPICE server at {address} dropped the connection during the link"
                              f" ({what}): {exc}") from None


async def link(address: Address, channel_type: int, channel_id: int = 0, connection_id: int = 0,
               password: str | None = None, channel_caps: tuple[int, ...] = (),
               version: tuple[int, int] = (P.VERSION_MAJOR, P.VERSION_MINOR),
               timeout: float = 5.0) -> Link:
    """Open a connection and link one channel; raises a :class:`SpiceError` subclass on failure."""
    reader, writer = await open_stream(address, timeout)
    try:
        return await asyncio.wait_for(
            _handshake(reader, writer, address, channel_type, channel_id, connection_id, password,
                       channel_caps, version), timeout)
    except asyncio.TimeoutError:
        writer.close()
        raise SpiceConnectError(f"SPICE server at {address} did not finish the link within {timeout} s")
    except BaseException:
        writer.close()
        raise


async def _handshake(reader, writer, address, channel_type, channel_id, connection_id, password,
                     channel_caps, version) -> Link:
    common = P.caps_words(COMMON_CAPS)
    chan = P.caps_words(channel_caps)
    mess = P.LINK_MESS.pack(connection_id, channel_type, channel_id, len(common), len(chan),
                            P.LINK_MESS.size)
    caps = struct.pack(f"<{len(common) + len(chan)}I", *common, *chan)
    body = mess + caps
    writer.write(P.LINK_HEADER.pack(P.MAGIC, version[0], version[1], len(body)) + body)

    magic, major, minor, size = P.LINK_HEADER.unpack(
        await _read(reader, P.LINK_HEADER.size, "reply header", address))
    if magic != P.MAGIC:
        raise SpiceProtocolError(f"{address} is not a SPICE server (magic {magic:#010x})")
    if major != P.VERSION_MAJOR:
        raise SpiceVersionError(f"SPICE server at {address} speaks protocol {major}.{minor}; this"
                                f" client speaks {P.VERSION_MAJOR}.{P.VERSION_MINOR}")
    if size < 4:
        raise SpiceProtocolError(f"link reply from {address} is only {size} bytes")
    if size > P.MAX_LINK_REPLY:  # checked before reading: the size comes from the server
        raise SpiceProtocolError(f"link reply from {address} claims {size} bytes, more than a SPICE"
                                 f" server sends ({P.MAX_LINK_REPLY}); is this a SPICE port?")
    reply = await _read(reader, size, "reply", address)
    error = struct.unpack_from("<I", reply)[0]
    if error != P.LinkResult.OK:
        _raise_link_result(error, address, channel_type, password)
    if size < P.LINK_REPLY.size:
        raise SpiceProtocolError(f"link reply from {address} is {size} bytes, expected at least"
                                 f" {P.LINK_REPLY.size}")
    _, pub_key, n_common, n_chan, caps_offset = P.LINK_REPLY.unpack_from(reply)
    if caps_offset + 4 * (n_common + n_chan) > size:
        raise SpiceProtocolError(f"link reply from {address} announces more caps than it holds")
    words = list(struct.unpack_from(f"<{n_common + n_chan}I", reply, caps_offset))
    server_common, server_chan = words[:n_common], words[n_common:]

    if P.has_cap(server_common, P.CAP_PROTOCOL_AUTH_SELECTION):
        if not P.has_cap(server_common, P.CAP_AUTH_SPICE):
            raise SpiceLinkError(f"SPICE server at {address} offers only SASL authentication, which"
                                 " this client does not support", P.LinkResult.ERROR)
        writer.write(struct.pack("<I", P.AUTH_MECHANISM_SPICE))
    writer.write(encrypt_ticket(pub_key, password or ""))
    result = struct.unpack("<I", await _read(reader, 4, "link result", address))[0]
    if result != P.LinkResult.OK:
        _raise_link_result(result, address, channel_type, password)
    mini = P.has_cap(server_common, P.CAP_MINI_HEADER)
    log.debug("linked %s channel %d:%d (mini header %s)", address, channel_type, channel_id, mini)
    return Link(reader, writer, channel_type, channel_id, mini, server_common, server_chan)


def _raise_link_result(code: int, address: Address, channel_type: int, password: str | None):
    try:
        name = P.LinkResult(code).name
    except ValueError:
        name = "UNKNOWN"
    text = _LINK_RESULT_TEXT.get(code, "unknown link error")
    where = f"SPICE server at {address} refused channel {channel_type}: {text} (link result {code} {name})"
    if code == P.LinkResult.PERMISSION_DENIED:
        hint = ("; check the password (--password-file / spice:passwordFile)" if password
                else "; the server wants a password: give one with --password-file or spice:passwordFile")
        raise SpiceAuthError(where + hint, code)
    if code == P.LinkResult.VERSION_MISMATCH:
        raise SpiceVersionError(where)
    raise SpiceLinkError(where, code)
