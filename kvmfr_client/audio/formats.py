"""PCM formats: what a stream carries (rate, sample size, channels, speaker positions) and its decoding.

Every source (Scream UDP, Scream IVSHMEM, SPICE playback) describes its audio as a :class:`PcmFormat`
and hands interleaved little-endian PCM to :func:`decode`, which gives float32 frames for the player.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kvmfr_client.audio import pulse

MAX_CHANNELS = 8
SAMPLE_BITS = (16, 24, 32)
MIN_RATE = 8000
MAX_RATE = 384000  # PA_RATE_MAX: higher rates the header can express, no sound server can play

# pa_channel_position_t values.
POS_MONO = 0
POS_FRONT_LEFT = 1
POS_FRONT_RIGHT = 2
POS_FRONT_CENTER = 3
POS_REAR_CENTER = 4
POS_REAR_LEFT = 5
POS_REAR_RIGHT = 6
POS_LFE = 7
POS_FRONT_LEFT_OF_CENTER = 8
POS_FRONT_RIGHT_OF_CENTER = 9
POS_SIDE_LEFT = 10
POS_SIDE_RIGHT = 11
POS_AUX0 = 12
POS_TOP_CENTER = 44
POS_TOP_FRONT_LEFT = 45
POS_TOP_FRONT_RIGHT = 46
POS_TOP_FRONT_CENTER = 47
POS_TOP_REAR_LEFT = 48

# WAVEFORMATEXTENSIBLE dwChannelMask bit -> Pulse position. Scream carries only the low 16 bits, so the
# list stops at TOP_BACK_LEFT (bit 15).
MASK_BIT_POSITIONS = (
    POS_FRONT_LEFT, POS_FRONT_RIGHT, POS_FRONT_CENTER, POS_LFE,
    POS_REAR_LEFT, POS_REAR_RIGHT,  # Windows "back" is Pulse "rear"
    POS_FRONT_LEFT_OF_CENTER, POS_FRONT_RIGHT_OF_CENTER, POS_REAR_CENTER,
    POS_SIDE_LEFT, POS_SIDE_RIGHT, POS_TOP_CENTER,
    POS_TOP_FRONT_LEFT, POS_TOP_FRONT_CENTER, POS_TOP_FRONT_RIGHT, POS_TOP_REAR_LEFT,
)

# The masks Windows uses when a driver gives none (KSAUDIO_SPEAKER_*), by channel count.
DEFAULT_MASKS = {1: 0x0004, 2: 0x0003, 3: 0x0007, 4: 0x0033, 5: 0x0037, 6: 0x003F, 7: 0x013F, 8: 0x063F}


class FormatError(ValueError):
    """A stream format no player can open; the message names the field and the value."""


@dataclass(frozen=True)
class PcmFormat:
    rate: int
    bits: int
    channels: int
    channel_mask: int = 0

    def validate(self) -> "PcmFormat":
        if self.bits not in SAMPLE_BITS:
            raise FormatError(f"bits per sample {self.bits} is not 16, 24 or 32")
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise FormatError(f"channel count {self.channels} is not 1..{MAX_CHANNELS}")
        if not MIN_RATE <= self.rate <= MAX_RATE:
            raise FormatError(f"sample rate {self.rate} Hz is outside {MIN_RATE}..{MAX_RATE}")
        return self

    @property
    def frame_bytes(self) -> int:
        return self.bits // 8 * self.channels

    def positions(self) -> tuple[int, ...]:
        return channel_positions(self.channel_mask, self.channels)

    def describe(self) -> str:
        return f"{self.rate} Hz {self.bits}-bit {self.channels} ch mask 0x{self.channel_mask:04x}"


def channel_positions(mask: int, channels: int) -> tuple[int, ...]:
    """Speaker positions for ``channels`` interleaved channels described by a Windows channel mask.

    Channels take the mask's set bits in order (that is the WAVEFORMATEXTENSIBLE rule). A mask of 0, or
    one with too few bits, falls back to the Windows default for that count, then to AUX positions.
    """
    if channels == 1 and mask in (0, 0x0004):
        return (POS_MONO,)
    bits = [MASK_BIT_POSITIONS[i] for i in range(16) if mask >> i & 1]
    if len(bits) < channels:
        default = DEFAULT_MASKS.get(channels, 0)
        default_bits = [MASK_BIT_POSITIONS[i] for i in range(16) if default >> i & 1]
        bits = default_bits if len(default_bits) >= channels else bits
    positions = bits[:channels]
    aux = POS_AUX0
    while len(positions) < channels:
        positions.append(aux)
        aux += 1
    return tuple(positions)


def decode(fmt: PcmFormat, payload: bytes | memoryview) -> np.ndarray:
    """Interleaved little-endian PCM -> float32 array of shape (frames, channels) in [-1, 1).

    A trailing partial frame is dropped (the caller logs it); the result never aliases ``payload``.
    """
    usable = len(payload) - len(payload) % fmt.frame_bytes
    raw = memoryview(payload)[:usable]
    if fmt.bits == 16:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32)
        samples *= np.float32(1.0 / 32768.0)
    elif fmt.bits == 32:
        samples = (np.frombuffer(raw, dtype="<i4").astype(np.float64) * (1.0 / 2147483648.0)).astype(np.float32)
    else:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        samples = value.astype(np.float32) * (1.0 / 8388608.0)
    return samples.reshape(-1, fmt.channels)


def encode(fmt: PcmFormat, frames: np.ndarray) -> bytes:
    """float32 (frames, channels) -> interleaved little-endian PCM; the inverse of :func:`decode`."""
    x = np.clip(np.asarray(frames, dtype=np.float64).reshape(-1), -1.0, 1.0)
    if fmt.bits == 16:
        return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2").tobytes()
    if fmt.bits == 32:
        return np.clip(np.round(x * 2147483648.0), -2147483648, 2147483647).astype("<i4").tobytes()
    v = np.clip(np.round(x * 8388608.0), -8388608, 8388607).astype(np.int32) & 0xFFFFFF
    out = np.empty((v.size, 3), dtype=np.uint8)
    out[:, 0] = v & 0xFF
    out[:, 1] = (v >> 8) & 0xFF
    out[:, 2] = (v >> 16) & 0xFF
    return out.tobytes()


def player_spec(fmt: PcmFormat) -> pulse.StreamSpec:
    """The Pulse stream the player opens for ``fmt``: float32 (so drift resampling is exact enough), same
    rate and speaker positions."""
    return pulse.StreamSpec(pulse.SAMPLE_FLOAT32LE, fmt.rate, fmt.positions())


SINK_7_1_POSITIONS = channel_positions(0x063F, 8)  # FL FR FC LFE RL RR SL SR
