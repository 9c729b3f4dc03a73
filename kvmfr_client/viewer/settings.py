"""The settings panel of overlay mode: scaling, the filters (each on or off, in order, or a preset), vsync,
the cursor and the audio latency, changed live.

Built with Dear ImGui inside :class:`kvmfr_client.viewer.gui.Gui`'s frame; each change goes straight to the
renderer, the window or the audio service (nothing is written to the configuration files). Every change
is logged and listed in :attr:`Settings.changes` as ``option=value`` (``--stats-json``).
"""

from __future__ import annotations

import logging

import glfw

from kvmfr_client.config.options import parse_latency_ms
from kvmfr_client.viewer import filters

log = logging.getLogger(__name__)

SCALERS = ("linear", "nearest")
LATENCY_STEP_MS = 5
# What a filter the options left off gets when it is turned on here.
_OFF_DEFAULTS = ({"filter": "downscale"}, {"filter": "easu"}, {"filter": "cas", "sharpness": 0.5},
                 {"filter": "nightvision", "gain": 1}, {"filter": "colorblind", "mode": 2})


def describe(spec: dict) -> str:
    """A filter pass in the panel's words: "night vision, gain 1"."""
    name = spec["filter"]
    if name == "downscale":
        size = f", {spec['pixel_size']:g}x{spec['pixel_size']:g} pixels" if spec.get("pixel_size") else ""
        return f"downscale ({spec['kernel']}{size})"
    if name == "easu":
        return "upscale (edge-adaptive)"
    if name == "cas":
        return f"sharpen (CAS {spec['sharpness']:g})"
    if name == "nightvision":
        return f"night vision, gain {spec['gain']:g}"
    if name == "colorblind":
        return f"colour-blind: {filters.CB_NAMES[spec['mode']]}{' (simulated)' if spec['simulate'] else ''}"
    return f"shader {spec['path'].rsplit('/', 1)[-1]}"


def entries_for(chain: list[dict]) -> list[list]:
    """The panel's filter list, [spec, on] each: the chain's passes on, in their order, then every other
    filter off (with the parameters it gets when turned on)."""
    out = [[spec, True] for spec in chain]
    have = {spec["filter"] for spec in chain}
    out += [[spec, False] for spec in filters.normalize([d for d in _OFF_DEFAULTS if d["filter"] not in have])]
    return out


class Settings:
    """What the panel changes: ``renderer`` (its :class:`RenderOptions`, filter chain and cursor layer),
    ``window`` (vsync), ``audio`` (an :class:`kvmfr_client.audio.AudioService` or None)."""

    def __init__(self, renderer, window, vsync: bool, preset: str = "", audio=None,
                 audio_latency_ms: int | None = None) -> None:
        self.renderer = renderer
        self.window = window
        self.vsync = vsync
        self.preset = preset          # "" none
        self.entries = entries_for(list(renderer.options.filters or []))
        self.audio = audio
        self.audio_latency_ms = audio_latency_ms
        self.changes: list[str] = []  # "option=value" in the order they were made (--stats-json)

    def _changed(self, what: str) -> None:
        log.info("setting changed: %s", what)
        self.changes.append(what)
        self.window.dirty = True

    def _set_preset(self, name: str) -> None:
        try:
            passes = filters.load_preset(name) if name else []
            self.renderer.set_filters(passes)
        except Exception as exc:   # a preset edited into something bad: say so, keep the picture
            log.error("filter preset %s not used: %s", name, exc)
            return
        self.preset = name
        self.entries = entries_for(passes)
        self._changed(f"egl:preset={name}")

    def _apply_entries(self) -> None:
        chain = [spec for spec, on in self.entries if on]
        self.renderer.set_filters(chain)
        self._changed(f"filters={','.join(spec['filter'] for spec in chain)}")

    def build(self, imgui, gui) -> None:
        # two columns (scaling, display, audio | filters), so the panel fits a 540-pixel window
        if not imgui.begin_table("settings-columns", 2, imgui.TableFlags_.sizing_fixed_fit):
            return
        imgui.table_next_row()
        imgui.table_next_column()
        self._build_display(imgui, gui)
        imgui.table_next_column()
        self._build_filters(imgui, gui)
        imgui.end_table()

    def _build_display(self, imgui, gui) -> None:
        opts = self.renderer.options
        imgui.separator_text("Scaling")
        for name in SCALERS:
            if imgui.radio_button(name, opts.filter == name) and opts.filter != name:
                opts.filter = name
                self.renderer._tex_filter = None      # re-applied at the next draw
                self._changed(f"win:filter={name}")
            gui.note(f"scale:{name}")
            imgui.same_line()
        imgui.new_line()
        for key, attr, label in (("win:keepAspect", "keep_aspect", "keep the aspect ratio"),
                                 ("win:intUpscale", "int_upscale", "integer upscaling"),
                                 ("win:dontUpscale", "dont_upscale", "never upscale")):
            changed, value = imgui.checkbox(label, getattr(opts, attr))
            gui.note(key)
            if changed:
                setattr(opts, attr, value)
                self._changed(f"{key}={'yes' if value else 'no'}")
        imgui.separator_text("Display")
        changed, value = imgui.checkbox("vsync", self.vsync)
        gui.note("egl:vsync")
        if changed:
            self.vsync = value
            glfw.swap_interval(1 if value else 0)
            self._changed(f"egl:vsync={'yes' if value else 'no'}")
        cursor = self.renderer.cursor
        changed, value = imgui.checkbox("show the guest cursor", not cursor.hidden_by_user)
        gui.note("cursor:show")
        if changed:
            cursor.hidden_by_user = not value
            self._changed(f"cursor:show={'yes' if value else 'no'}")
        changed, value = imgui.checkbox("cursor 1:1 when shrunk", cursor.keep_size)
        gui.note("egl:scalePointer")
        if changed:
            cursor.keep_size = value
            self._changed(f"egl:scalePointer={'yes' if value else 'no'}")
        if self.audio is not None and self.audio_latency_ms is not None:
            self._build_audio(imgui, gui)

    def _build_filters(self, imgui, gui) -> None:
        imgui.separator_text("Filters")
        imgui.text("preset:")
        for name in [""] + filters.preset_names():     # "": none (the chain below)
            imgui.same_line()
            if imgui.radio_button(name or "none", self.preset == name) and self.preset != name:
                self._set_preset(name)
            gui.note(f"preset:{name or 'none'}")
        for i, (spec, on) in enumerate(list(self.entries)):
            name = spec["filter"]
            imgui.push_id(f"filter{i}")
            if imgui.arrow_button("up", imgui.Dir.up) and i > 0:
                self.entries[i - 1], self.entries[i] = self.entries[i], self.entries[i - 1]
                self._apply_entries()
            gui.note(f"filter-up:{name}")
            imgui.same_line()
            changed, value = imgui.checkbox(describe(spec), on)
            gui.note(f"filter:{name}")
            imgui.pop_id()
            if changed:
                self.entries[i][1] = value
                self._apply_entries()

    def _build_audio(self, imgui, gui) -> None:
        imgui.separator_text("Audio")
        for label, step in (("-", -LATENCY_STEP_MS), ("+", LATENCY_STEP_MS)):
            if imgui.button(f" {label} "):
                try:
                    value = parse_latency_ms(str(self.audio_latency_ms + step))
                except ValueError:       # outside audio:latency's range: stay
                    value = self.audio_latency_ms
                if value != self.audio_latency_ms:
                    self.audio_latency_ms = value
                    self.audio.set_latency(value)
                    self._changed(f"audio:latency={value}")
            gui.note(f"audio:latency{label}")
            imgui.same_line()
        imgui.text(f"latency {self.audio_latency_ms} ms")
