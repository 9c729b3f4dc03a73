"""SPICE protocol numbers and struct layouts, in one place (see docs/input.md and the SPICE protocol).

Everything on the wire is little-endian and packed.
"""

from __future__ import annotations

import enum
import struct

from .errors import SpiceProtocolError

MAGIC = 0x51444552  # "REDQ"
VERSION_MAJOR = 2
VERSION_MINOR = 2

# SpiceLinkHeader: magic, major, minor, size
LINK_HEADER = struct.Struct("<IIII")
# SpiceLinkMess: connection_id, channel_type, channel_id, num_common_caps, num_channel_caps, caps_offset
LINK_MESS = struct.Struct("<IBBIII")
# SpiceLinkReply without the caps: error, pub_key[162], num_common_caps, num_channel_caps, caps_offset
PUB_KEY_SIZE = 162
LINK_REPLY = struct.Struct(f"<I{PUB_KEY_SIZE}sIII")
TICKET_SIZE = 128
MAX_PASSWORD_LENGTH = 60

MINI_HEADER = struct.Struct("<HI")  # type, size

# Caps on what the server (and through it the guest) can make us hold. Every size read from the wire is
# checked against one of these before anything is allocated for it.
# The largest server message we read into memory. Everything this client parses is small (MAIN INIT
# 32 B, AGENT_DATA at most 2 KiB, inputs a few bytes, a playback DATA block ~2 KiB at 48 kHz stereo);
# a larger message is read in pieces and dropped, so a lying size costs no memory.
MAX_MESSAGE_SIZE = 1024 * 1024
# The link reply: 178 bytes plus the capability words (spice-server sends 2); 4 KiB is ample.
MAX_LINK_REPLY = 4096
FULL_HEADER = struct.Struct("<QHII")  # serial, type, size, sub_list


class ChannelType(enum.IntEnum):
    MAIN = 1
    DISPLAY = 2
    INPUTS = 3
    CURSOR = 4
    PLAYBACK = 5
    RECORD = 6


class LinkResult(enum.IntEnum):
    OK = 0
    ERROR = 1
    INVALID_MAGIC = 2
    INVALID_DATA = 3
    VERSION_MISMATCH = 4
    NEED_SECURED = 5
    NEED_UNSECURED = 6
    PERMISSION_DENIED = 7
    BAD_CONNECTION_ID = 8
    CHANNEL_NOT_AVAILABLE = 9


# Common capability bits.
CAP_PROTOCOL_AUTH_SELECTION = 0
CAP_AUTH_SPICE = 1
CAP_AUTH_SASL = 2
CAP_MINI_HEADER = 3

AUTH_MECHANISM_SPICE = 1

# Main channel capability bits.
MAIN_CAP_NAME_AND_UUID = 1
MAIN_CAP_AGENT_CONNECTED_TOKENS = 2

# Inputs channel capability bits.
INPUTS_CAP_KEY_SCANCODE = 0


def unpack(layout: struct.Struct, payload: bytes, what: str, offset: int = 0) -> tuple:
    """``layout`` read from ``payload`` at ``offset``, or :class:`SpiceProtocolError` naming the message
    when it is too short (the one "refused" exception of every message parser)."""
    if len(payload) < offset + layout.size:
        raise SpiceProtocolError(f"{what} of {len(payload)} bytes is shorter than its {offset + layout.size}")
    return layout.unpack_from(payload, offset)


def caps_words(bits: tuple[int, ...] | list[int]) -> list[int]:
    words: list[int] = []
    for bit in bits:
        index, shift = divmod(bit, 32)
        while len(words) <= index:
            words.append(0)
        words[index] |= 1 << shift
    return words


def has_cap(words: list[int], bit: int) -> bool:
    index, shift = divmod(bit, 32)
    return index < len(words) and bool(words[index] >> shift & 1)


# Messages every channel understands.
class ServerMsg(enum.IntEnum):
    MIGRATE = 1
    MIGRATE_DATA = 2
    SET_ACK = 3
    PING = 4
    WAIT_FOR_CHANNELS = 5
    DISCONNECTING = 6
    NOTIFY = 7
    LIST = 8


class ClientMsg(enum.IntEnum):
    ACK_SYNC = 1
    ACK = 2
    PONG = 3
    MIGRATE_FLUSH_MARK = 4
    MIGRATE_DATA = 5
    DISCONNECTING = 6


class MainServerMsg(enum.IntEnum):
    INIT = 103
    CHANNELS_LIST = 104
    MOUSE_MODE = 105
    MULTI_MEDIA_TIME = 106
    AGENT_CONNECTED = 107
    AGENT_DISCONNECTED = 108
    AGENT_DATA = 109
    AGENT_TOKEN = 110
    NAME = 113
    UUID = 114
    AGENT_CONNECTED_TOKENS = 115


class MainClientMsg(enum.IntEnum):
    CLIENT_INFO = 101
    ATTACH_CHANNELS = 104
    MOUSE_MODE_REQUEST = 105
    AGENT_START = 106
    AGENT_DATA = 107
    AGENT_TOKEN = 108


# MAIN INIT: session_id, display_channels_hint, supported_mouse_modes, current_mouse_mode,
# agent_connected, agent_tokens, multi_media_time, ram_hint
MAIN_INIT = struct.Struct("<8I")
MOUSE_MODE = struct.Struct("<HH")  # supported, current


class MouseMode(enum.IntEnum):
    SERVER = 1  # relative: the client sends deltas, the guest draws the pointer
    CLIENT = 2  # absolute: the client sends positions (needs a tablet or the agent)


class InputsServerMsg(enum.IntEnum):
    INIT = 101
    KEY_MODIFIERS = 102
    MOUSE_MOTION_ACK = 111


class InputsClientMsg(enum.IntEnum):
    KEY_DOWN = 101
    KEY_UP = 102
    KEY_MODIFIERS = 103
    KEY_SCANCODE = 104
    MOUSE_MOTION = 111
    MOUSE_POSITION = 112
    MOUSE_PRESS = 113
    MOUSE_RELEASE = 114


KEY_CODE = struct.Struct("<I")
KEY_MODIFIERS = struct.Struct("<H")
MOUSE_MOTION = struct.Struct("<iiH")  # dx, dy, buttons_state
MOUSE_POSITION = struct.Struct("<IIHB")  # x, y, buttons_state, display_id
MOUSE_BUTTON = struct.Struct("<BH")  # button, buttons_state

# Audio (playback and record channels): the only sample format and data mode SPICE defines that we use.
AUDIO_FMT_S16 = 1
MODE_RAW = 1


class RecordServerMsg(enum.IntEnum):
    START = 101
    STOP = 102
    VOLUME = 103
    MUTE = 104


class RecordClientMsg(enum.IntEnum):
    DATA = 101
    MODE = 102
    START_MARK = 103


# The server acknowledges every this many motion/position messages.
MOTION_ACK_BUNCH = 4


class Modifier(enum.IntFlag):
    """Lock-key state as carried by KEY_MODIFIERS."""

    SCROLL_LOCK = 1
    NUM_LOCK = 2
    CAPS_LOCK = 4


class Button(enum.IntEnum):
    LEFT = 1
    MIDDLE = 2
    RIGHT = 3
    UP = 4
    DOWN = 5
    SIDE = 6
    EXTRA = 7


BUTTON_MASK = {
    Button.LEFT: 0x01,
    Button.MIDDLE: 0x02,
    Button.RIGHT: 0x04,
    Button.UP: 0x08,
    Button.DOWN: 0x10,
    Button.SIDE: 0x20,
    Button.EXTRA: 0x40,
}
