"""SpiceClient's clipboard hand-over, without a server: the guest's copy that arrives before a handler is set
(its agent announces it on connect, before the viewer's window exists) is kept and given to the handler
of its kind when one is set; later copies go straight to the handler, in the order the guest made them."""

from __future__ import annotations

import threading

from kvmfr_client.spice import Address, SpiceClient


def client() -> SpiceClient:
    return SpiceClient(Address.parse("127.0.0.1:5900"), clipboard=True)


def test_a_copy_without_a_handler_is_kept_for_the_first_handler_of_its_kind():
    c = client()
    c._guest_text("before the window")
    images: list = []
    c.on_clipboard_image = lambda kind, data: images.append((kind, data))
    assert images == [], "a text copy is not handed to an image handler"
    texts: list[str] = []
    c.on_clipboard_text = texts.append
    assert texts == ["before the window"]
    c.on_clipboard_text = texts.append          # handed over once, not again
    c._guest_text("later")
    assert texts == ["before the window", "later"]


def test_only_the_latest_copy_is_kept_and_a_newer_kind_replaces_it():
    c = client()
    c._guest_text("old")
    c._guest_image(1, b"\x89PNG")
    texts: list[str] = []
    images: list = []
    c.on_clipboard_text = texts.append
    c.on_clipboard_image = lambda kind, data: images.append((kind, data))
    assert texts == [] and images == [(1, b"\x89PNG")]


def test_a_handler_set_while_the_guest_copies_sees_the_copies_in_order():
    for _ in range(50):
        c = client()
        c._guest_text("kept")
        got: list[str] = []
        started = threading.Event()

        def guest():
            started.set()
            c._guest_text("newer")
        t = threading.Thread(target=guest)
        t.start()
        started.wait()
        c.on_clipboard_text = got.append
        t.join()
        assert got in (["kept", "newer"], ["newer"]), got
