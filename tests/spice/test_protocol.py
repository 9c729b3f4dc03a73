"""Wire details checked without a server: the ticket, scancode packing, the kvmfr-input grammar."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kvmfr_client.spice import keymap
from kvmfr_client.spice.actions import ActionError, parse
from kvmfr_client.spice.link import Address, encrypt_ticket
from kvmfr_client.spice.protocol import PUB_KEY_SIZE, TICKET_SIZE


def test_ticket_is_rsa_oaep_sha1_of_the_password_and_a_nul():
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    assert len(der) == PUB_KEY_SIZE
    ticket = encrypt_ticket(der, "pässword")
    assert len(ticket) == TICKET_SIZE
    plain = key.decrypt(ticket, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
    assert plain == "pässword".encode() + b"\0"
    assert key.decrypt(encrypt_ticket(der, ""), padding.OAEP(
        mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)) == b"\0"


def test_make_and_break_codes():
    a = keymap.scancode(keymap.key_from_name("a"))
    up = keymap.scancode(keymap.key_from_name("up"))
    assert (keymap.make_code(a), keymap.break_code(a)) == (0x1E, 0x9E)
    assert (keymap.make_code(up), keymap.break_code(up)) == (0x48E0, 0xC8E0)  # bytes E0 48 / E0 C8


def test_evdev_codes_1_to_88_are_their_own_scancodes():
    for evdev in list(range(1, 84)) + [86, 87, 88]:
        assert keymap.scancode(evdev) == evdev


def test_addresses():
    assert Address.parse("127.0.0.1:5900") == Address("127.0.0.1", 5900)
    assert Address.parse("/run/spice.sock") == Address("/run/spice.sock", 0)
    assert Address.parse("unix:rel.sock").is_unix
    with pytest.raises(ValueError):
        Address.parse("localhost")


def test_action_grammar():
    actions = parse(["key", "ctrl+alt+f2", "wheel", "down", "3", "wheel", "up", "move", "1", "-1"])
    assert [a.verb for a in actions] == ["key", "wheel", "wheel", "move"]
    assert actions[1].args == (-3,) and actions[2].args == (1,)
    for bad in (["key"], ["type", "€"], ["click", "sideways"], ["jump"]):
        with pytest.raises(ActionError):
            parse(bad)


def test_a_server_key_too_small_for_the_ticket_is_a_protocol_error_not_a_crash():
    """Found while hardening the link: a 512-bit key made RSA-OAEP raise a bare ValueError."""
    from kvmfr_client.spice.errors import SpiceProtocolError

    small = rsa.RSAPublicNumbers(65537, (1 << 511) | 12345).public_key()
    der = small.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(SpiceProtocolError, match="too small"):
        encrypt_ticket(der, "p" * 40)  # OAEP-SHA1 in 64 bytes holds at most 22
    with pytest.raises(SpiceProtocolError, match="not a valid DER RSA key"):
        encrypt_ticket(b"\x30\x03\x02\x01\x00", "password")


def test_an_oversized_or_short_message_is_skipped_and_the_channel_goes_on():
    """A message over the 1 MiB cap is read through and dropped (it used to end the channel), a PING too
    short for its fields is skipped (it used to raise struct.error out of the reader task); the PING
    after them is still answered."""
    import asyncio
    import struct

    from kvmfr_client.spice import protocol as P
    from kvmfr_client.spice.channel import Channel
    from kvmfr_client.spice.errors import SpiceServerGone
    from kvmfr_client.spice.link import Link

    class Writer:
        def __init__(self):
            self.data = bytearray()

        def write(self, data):
            self.data += data

        def is_closing(self):
            return False

    async def go():
        reader = asyncio.StreamReader()
        huge = 3 * P.MAX_MESSAGE_SIZE
        reader.feed_data(struct.pack("<HI", 999, huge) + bytes(huge))
        reader.feed_data(struct.pack("<HI", P.ServerMsg.PING, 3) + b"abc")
        reader.feed_data(struct.pack("<HI", P.ServerMsg.PING, 12) + struct.pack("<IQ", 7, 99))
        reader.feed_eof()
        writer = Writer()
        channel = Channel(Link(reader, writer, 1, 0, True), Address("test", 1))
        with pytest.raises(SpiceServerGone):
            await channel._run()
        return channel, bytes(writer.data)

    channel, sent = asyncio.run(go())
    assert channel.bad_messages == 2
    assert sent == struct.pack("<HI", 3, 12) + struct.pack("<IQ", 7, 99)  # PONG to the good PING only
