"""The settings panel of overlay mode: scaling, the filter preset, vsync and the cursor, changed live.

Built with Dear ImGui inside :class:`kvmfr_client.viewer.gui.Gui`'s frame; each change goes straight to the
renderer or the window (nothing is written to the configuration files).
"""

from __future__ import annotations

import logging

import glfw

from kvmfr_client.viewer import filters

log = logging.getLogger(__name__)

SCALERS = ("linear", "nearest")


class Settings:
    """What the panel changes: ``renderer`` (its :class:`RenderOptions` and filter chain), ``window``
    (vsync), ``cursor`` (the cursor layer)."""

    def __init__(self, renderer, window, vsync: bool, preset: str = "") -> None:
        self.renderer = renderer
        self.window = window
        self.vsync = vsync
        self.preset = preset          # "" none
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
        self._changed(f"egl:preset={name}")

    def build(self, imgui, gui) -> None:
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
        imgui.separator_text("Filters")
        for name in [""] + filters.preset_names():     # "": no filter (the plain 1:1 blit path)
            if imgui.radio_button(name or "none", self.preset == name) and self.preset != name:
                self._set_preset(name)
            gui.note(f"preset:{name or 'none'}")
        imgui.separator_text("Display")
        changed, value = imgui.checkbox("vsync", self.vsync)
        gui.note("egl:vsync")
        if changed:
            self.vsync = value
            glfw.swap_interval(1 if value else 0)
            self._changed(f"egl:vsync={'yes' if value else 'no'}")
        cursor = self.renderer.cursor
        changed, value = imgui.checkbox("show the guest cursor", not getattr(cursor, "hidden_by_user", False))
        gui.note("cursor:show")
        if changed:
            cursor.hidden_by_user = not value
            self._changed(f"cursor:show={'yes' if value else 'no'}")
