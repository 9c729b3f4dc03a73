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
