"""The SPICE link handshake: one per channel, over TCP or a UNIX socket.

Client sends SpiceLinkHeader + SpiceLinkMess + caps; the server answers with its RSA key and caps; the
client sends the auth mechanism and the ticket (password encrypted with RSA-OAEP/SHA-1); the server
answers with a link result.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import socket
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


def _qemu_option(address: Address) -> str:
    return f"-spice unix=on,addr={address.host}" if address.is_unix else f"-spice port={address.port}"


def _errno(exc: BaseException) -> int | None:
    """The errno of a failed connect. A host name with several addresses (localhost: ::1 and 127.0.0.1)
    that all failed differently reaches us as one OSError("Multiple exceptions: [Errno 111] ..., [Errno 101]
    ...") without an errno (Python 3.11): the most telling of the numbers in its text, a refusal first (some
    address answered, and nothing listens there), then an unreachable network."""
    if getattr(exc, "errno", None) is not None or not str(exc).startswith("Multiple exceptions"):
        return getattr(exc, "errno", None)
    found = {int(n) for n in re.findall(r"\[Errno (\d+)\]", str(exc))}
    for err in (errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ETIMEDOUT):
        if err in found:
            return err
    return None


def connect_failure(address: Address, exc: BaseException, timeout: float) -> str:
    """Why a connection to ``address`` failed, in the user's words, with what to check. The one place this
    is worded for every SPICE user (the window, kvmfr-input, kvmfr-audio's SPICE playback); the library's
    own text ("Connect call failed (...)", the resolver's, errno numbers) goes to the debug log only."""
    err = _errno(exc)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or err == errno.ETIMEDOUT:
        return (f"no answer from {address} within {timeout:g} s; is the host up, and is nothing (a firewall) "
                f"dropping the connection? check spice:host and spice:port")
    if isinstance(exc, socket.gaierror):
        if exc.errno in (socket.EAI_AGAIN, getattr(socket, "EAI_SYSTEM", None)):
            return f"cannot resolve host name {address.host!r} (no answer from the name server): check spice:host"
        return f"cannot resolve host name {address.host!r}: check spice:host"
    if address.is_unix:
        if isinstance(exc, FileNotFoundError):
            return f"no SPICE socket at {address.host}; is QEMU running with {_qemu_option(address)}?"
        if isinstance(exc, PermissionError):
            return f"this user may not connect to the SPICE socket {address.host}: check its owner and mode"
        if isinstance(exc, ConnectionRefusedError):
            return (f"nothing is listening on the socket {address.host} (connection refused); is QEMU running "
                    f"with {_qemu_option(address)}?")
        return f"cannot connect to the SPICE socket {address.host}; is QEMU running with {_qemu_option(address)}?"
    if isinstance(exc, ConnectionRefusedError) or err == errno.ECONNREFUSED:
        return f"nothing is listening on {address} (connection refused); is QEMU running with {_qemu_option(address)}?"
    if err in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN):
        return f"{address.host} cannot be reached from here (no route to it): check spice:host and the network"
    if err == errno.EADDRNOTAVAIL:
        return f"cannot connect to {address}: that address is not usable from here; check spice:host"
    return f"cannot connect to the SPICE server at {address}; is QEMU running with {_qemu_option(address)}?"


def lost_how(exc: BaseException) -> str:
    """How an established connection ended, in words (the library's "[Errno 104] ..." to the debug log)."""
    log.debug("SPICE connection ended: %s: %s", type(exc).__name__, exc)
    if isinstance(exc, asyncio.IncompleteReadError):
        return "end of stream"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, BrokenPipeError):
        return "connection closed by the server"
    if isinstance(exc, ConnectionAbortedError):
        return "connection aborted"
    return "connection lost"


async def open_stream(address: Address, timeout: float = 5.0):
    try:
        if address.is_unix:
            coro = asyncio.open_unix_connection(address.host)
        else:
            coro = asyncio.open_connection(address.host, address.port)
        reader, writer = await asyncio.wait_for(coro, timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        log.debug("could not connect to %s: %s: %s", address, type(exc).__name__, exc)
        raise SpiceConnectError(connect_failure(address, exc, timeout)) from None
    sock = writer.get_extra_info("socket")
    if sock is not None and not address.is_unix:
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
                              f" ({what}): {lost_how(exc)}") from None


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
