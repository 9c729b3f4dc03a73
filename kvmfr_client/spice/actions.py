"""Scriptable input actions (`key ctrl+alt+f2`, `type "text"`, `move 10 0`, ...) shared by kvmfr-input
and the tests: parsed once into a list, then played on a connected :class:`SpiceClient`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from . import protocol as P
from .keymap import char_to_key, key_from_name, scancode

BUTTON_NAMES = {
    "left": P.Button.LEFT, "middle": P.Button.MIDDLE, "right": P.Button.RIGHT,
    "side": P.Button.SIDE, "back": P.Button.SIDE, "extra": P.Button.EXTRA, "forward": P.Button.EXTRA,
    "1": P.Button.LEFT, "2": P.Button.MIDDLE, "3": P.Button.RIGHT,
}

USAGE = """\
commands (any number, played in order):
  key COMBO          press and release keys, e.g. key a, key ctrl+alt+f2, key super
  keydown KEY        press a key and keep it down     keyup KEY   release it
  type TEXT          type text with a US layout (shift added where needed)
  move DX DY         relative motion (server mouse mode); large moves are split into +-127 steps
  moveto X Y         absolute position in guest pixels (needs client mouse mode: a usb-tablet)
  click BUTTON       press and release left|middle|right|side|extra
  press BUTTON       press a mouse button               release BUTTON   release it
  wheel up|down [N]  scroll N steps (default 1)
  locks [caps,num,scroll|none]   set the guest's lock keys
  sleep SECONDS      pause between commands"""


class ActionError(ValueError):
    """A command line for kvmfr-input that cannot be parsed."""


@dataclass(frozen=True)
class Action:
    verb: str
    args: tuple


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ActionError(f"{what} must be an integer, got {text!r}") from None


def _button(text: str) -> P.Button:
    try:
        return BUTTON_NAMES[text.lower()]
    except KeyError:
        raise ActionError(f"unknown mouse button {text!r}; use one of {', '.join(BUTTON_NAMES)}") from None


def _keys(combo: str) -> tuple[int, ...]:
    try:
        return tuple(scancode(key_from_name(part)) for part in combo.split("+") if part)
    except ValueError as exc:
        raise ActionError(str(exc)) from None


def parse(words: list[str]) -> list[Action]:
    actions: list[Action] = []
    i = 0

    def take(n: int, verb: str) -> list[str]:
        nonlocal i
        if i + n > len(words):
            raise ActionError(f"`{verb}` needs {n} argument{'s' if n > 1 else ''}")
        args = words[i:i + n]
        i += n
        return args

    while i < len(words):
        verb = words[i].lower()
        i += 1
        if verb == "key":
            (combo,) = take(1, verb)
            codes = _keys(combo)
            if not codes:
                raise ActionError("`key` needs at least one key name")
            actions.append(Action("key", codes))
        elif verb in ("keydown", "keyup"):
            (name,) = take(1, verb)
            actions.append(Action(verb, _keys(name)))
        elif verb == "type":
            (text,) = take(1, verb)
            try:
                actions.append(Action("type", tuple((scancode(k), shift) for k, shift in map(char_to_key, text))))
            except ValueError as exc:
                raise ActionError(str(exc)) from None
        elif verb in ("move", "moveto"):
            x, y = take(2, verb)
            actions.append(Action(verb, (_int(x, "X"), _int(y, "Y"))))
        elif verb in ("click", "press", "release"):
            (name,) = take(1, verb)
            actions.append(Action(verb, (_button(name),)))
        elif verb == "wheel":
            (direction,) = take(1, verb)
            if direction not in ("up", "down"):
                raise ActionError(f"`wheel` direction must be up or down, got {direction!r}")
            steps = 1
            if i < len(words) and words[i].isdigit():
                steps = int(words[i])
                i += 1
            actions.append(Action("wheel", (steps if direction == "up" else -steps,)))
        elif verb == "locks":
            (names,) = take(1, verb)
            flags = 0
            for name in names.lower().split(","):
                if name in ("", "none"):
                    continue
                try:
                    flags |= {"caps": P.Modifier.CAPS_LOCK, "num": P.Modifier.NUM_LOCK,
                              "scroll": P.Modifier.SCROLL_LOCK}[name]
                except KeyError:
                    raise ActionError(f"unknown lock {name!r}; use caps, num, scroll or none") from None
            actions.append(Action("locks", (flags,)))
        elif verb == "sleep":
            (seconds,) = take(1, verb)
            try:
                actions.append(Action("sleep", (float(seconds),)))
            except ValueError:
                raise ActionError(f"sleep needs seconds, got {seconds!r}") from None
        else:
            raise ActionError(f"unknown command {verb!r}\n{USAGE}")
    return actions


def needs_absolute(actions: list[Action]) -> bool:
    return any(a.verb == "moveto" for a in actions)


async def play(client, actions: list[Action], delay: float = 0.0, key_delay: float = 0.0) -> None:
    """Send ``actions`` through ``client`` (a connected SpiceClient), in order.

    ``key_delay`` paces key and button events: a PS/2 keyboard holds only 16 bytes, and QEMU drops what
    a burst puts beyond that before the guest has read it.
    """
    inputs = client.inputs

    async def paced(method, *args) -> None:
        method(*args)
        if key_delay:
            await inputs.drain()
            await asyncio.sleep(key_delay)

    shift = scancode(key_from_name("leftshift"))
    for action in actions:
        verb, args = action.verb, action.args
        if verb == "key":
            for code in args:
                await paced(inputs.key_down, code)
            for code in reversed(args):
                await paced(inputs.key_up, code)
        elif verb == "keydown":
            for code in args:
                await paced(inputs.key_down, code)
        elif verb == "keyup":
            for code in reversed(args):
                await paced(inputs.key_up, code)
        elif verb == "type":
            for code, shifted in args:
                if shifted:
                    await paced(inputs.key_down, shift)
                await paced(inputs.key_down, code)
                await paced(inputs.key_up, code)
                if shifted:
                    await paced(inputs.key_up, shift)
        elif verb == "move":
            inputs.motion(*args)
        elif verb == "moveto":
            inputs.position(*args)
        elif verb == "click":
            await paced(inputs.button_press, args[0])
            await paced(inputs.button_release, args[0])
        elif verb == "press":
            await paced(inputs.button_press, args[0])
        elif verb == "release":
            await paced(inputs.button_release, args[0])
        elif verb == "wheel":
            step = 1 if args[0] > 0 else -1
            for _ in range(abs(args[0])):
                await paced(inputs.wheel, step)
        elif verb == "locks":
            inputs.key_modifiers(args[0])
        elif verb == "sleep":
            await inputs.drain()
            await asyncio.sleep(args[0])
        if delay:
            await inputs.drain()
            await asyncio.sleep(delay)
    await inputs.drain()
