"""The overlay UI: Dear ImGui (imgui-bundle) drawn by our renderer, in our GL context, after the picture.

Nothing here runs while nothing is shown: :meth:`Gui.draw` is called with the panels to show, and with
none it returns before any ImGui frame is begun (no ImGui call, no GL call). The font is a proportional
TrueType font that Debian ships (DejaVu Sans), looked up at run time; without one ImGui's built-in
font is used and a line is logged.

What each frame drew (each panel's text lines and its window rectangle in pixels) is kept in
:attr:`Gui.drawn`, so tests and ``--stats-json`` can say what the window showed, in words.
All calls must come from the thread that owns the GL context.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

FONT_PX = 18.0

# Where Debian/Ubuntu (fonts-dejavu-core), Fedora and Arch put DejaVu Sans.
_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)


def find_font() -> str | None:
    """A proportional TTF to draw with: KVMFR_FONT (when set, that file or none), DejaVu Sans where
    distributions put it, or what fontconfig matches for "sans-serif"; None when there is none."""
    env = os.environ.get("KVMFR_FONT")
    if env:
        if os.path.isfile(env):
            return env
        log.warning("KVMFR_FONT=%s is not a font file", env)
        return None
    for path in _FONT_CANDIDATES:
        if os.path.isfile(path):
            return path
    if shutil.which("fc-match"):
        try:
            out = subprocess.run(["fc-match", "-f", "%{file}", "sans-serif:fontformat=TrueType"],
                                 capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out.lower().endswith(".ttf") and os.path.isfile(out):
            return out
    found = sorted(glob.glob("/usr/share/fonts/**/DejaVuSans.ttf", recursive=True))
    return found[0] if found else None


@dataclass
class Panel:
    """One block the overlay shows.

    ``anchor``: "center", "bottom", "top", "topleft" or "topright"; ``title``: a first line drawn larger
    (may be empty); ``lines``: the rest; ``rows``: (key, what it does) pairs drawn as two columns;
    ``plots``: (label, samples in ms) drawn as line graphs with the label, last and peak value;
    ``colour``: RGBA 0..1 of the title.
    """

    name: str
    title: str
    lines: list[str] = field(default_factory=list)
    anchor: str = "center"
    colour: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    rows: list[tuple[str, str]] = field(default_factory=list)
    plots: list[tuple[str, "object"]] = field(default_factory=list)
    movable: bool = False      # overlay mode may move it; its position is kept (positions_path)
    build: "object" = None     # called inside the window to add widgets (the settings panel)

    @property
    def text(self) -> list[str]:
        return [line for line in (self.title, *self.lines) if line] + [f"{k}: {v}" for k, v in self.rows] + \
            [_plot_text(label, values) for label, values in self.plots]


def _plot_text(label: str, values) -> str:
    """What a graph says in words: its label, the last sample and the peak (ms)."""
    if len(values) == 0:
        return f"{label}: -"
    return f"{label}: {float(values[-1]):.2f} ms (peak {float(max(values)):.2f})"


@dataclass
class Drawn:
    """What one panel drew last frame: its text and its window rectangle (x, y, w, h) in pixels."""

    text: list[str]
    rect: tuple[int, int, int, int]


class Gui:
    def __init__(self, font_px: float = FONT_PX, font_path: str | None = "auto") -> None:
        from imgui_bundle import imgui
        self._imgui = imgui
        self.ctx = imgui.create_context()
        imgui.set_current_context(self.ctx)
        io = imgui.get_io()
        io.set_ini_filename("")        # positions are ours to keep (not an imgui.ini in the cwd)
        io.set_log_filename("")
        io.config_flags |= imgui.ConfigFlags_.no_mouse_cursor_change
        self.font_path = find_font() if font_path == "auto" else font_path
        self.font_px = font_px
        if self.font_path:
            self.font = io.fonts.add_font_from_file_ttf(self.font_path, font_px)
            log.info("overlay font: %s, %g px", self.font_path, font_px)
        else:
            cfg = imgui.ImFontConfig()
            cfg.size_pixels = font_px
            self.font = io.fonts.add_font_default(cfg)
            log.warning("overlay font: no TrueType font found (install fonts-dejavu-core, or set KVMFR_FONT); "
                        "using Dear ImGui's built-in font")
        style = imgui.get_style()
        style.window_rounding = 6.0
        style.window_padding = imgui.ImVec2(14, 10)
        style.window_border_size = 0.0
        style.set_color_(imgui.Col_.window_bg, imgui.ImVec4(0.0, 0.0, 0.0, 0.72))
        self.items: dict[str, tuple[int, int, int, int]] = {}   # named widgets' rectangles (tests click them)
        self.interactive = False       # overlay mode: the mouse moves the movable panels
        self.positions: dict[str, tuple[float, float]] = {}   # movable panels' top-left, as saved
        self._renderer = None          # made at the first frame (needs the GL context current)
        self.drawn: dict[str, Drawn] = {}   # the last frame's panels
        self.seen: dict[str, Drawn] = {}    # every panel ever drawn, as last drawn
        self.frames = 0                # ImGui frames drawn (0 while nothing was ever shown)
        self._last_key: list | None = None

    def draw(self, panels: list[Panel], win_w: int, win_h: int, dt: float = 1 / 60) -> None:
        """Draw ``panels`` over what the default framebuffer holds. No panels: nothing at all."""
        self.drawn = {}
        panels = [p for p in panels if p.text]
        if not panels or win_w <= 0 or win_h <= 0:
            return
        imgui = self._imgui
        imgui.set_current_context(self.ctx)
        io = imgui.get_io()
        io.display_size = imgui.ImVec2(win_w, win_h)
        io.delta_time = max(dt, 1e-4)
        if self._renderer is None:
            from imgui_bundle.python_backends.opengl_backend_programmable import ProgrammablePipelineRenderer
            self._renderer = ProgrammablePipelineRenderer()
        # An auto-sized window learns its size in its first frame and is drawn from the second: the
        # viewer redraws only on change, so new text is laid out once unseen, then drawn.
        key = [(p.name, p.anchor, len(p.lines), len(p.rows), len(p.plots), max(map(len, p.text)), win_w, win_h)
               for p in panels]
        if key != self._last_key:
            self._build(panels, win_w, win_h)
            imgui.render()
            self._last_key = key
        self._build(panels, win_w, win_h)
        imgui.render()
        self._renderer.render(imgui.get_draw_data())
        self.frames += 1

    def _build(self, panels: list[Panel], win_w: int, win_h: int) -> None:
        imgui = self._imgui
        imgui.new_frame()
        imgui.push_font(self.font, self.font_px)
        flags = (imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.always_auto_resize
                 | imgui.WindowFlags_.no_saved_settings | imgui.WindowFlags_.no_focus_on_appearing
                 | imgui.WindowFlags_.no_nav)
        for p in panels:
            f = flags
            if not (self.interactive and p.movable):
                f |= imgui.WindowFlags_.no_inputs | imgui.WindowFlags_.no_move
            self._panel(p, win_w, win_h, f)
        imgui.pop_font()

    def _panel(self, p: Panel, win_w: int, win_h: int, flags) -> None:
        imgui = self._imgui
        pos, pivot = {
            "center": ((win_w / 2, win_h / 2), (0.5, 0.5)),
            "bottom": ((win_w / 2, win_h - 8), (0.5, 1.0)),
            "top": ((win_w / 2, 8), (0.5, 0.0)),
            "topright": ((win_w - 8, 8), (1.0, 0.0)),
        }.get(p.anchor, ((8, 8), (0.0, 0.0)))
        if p.movable and p.name in self.positions:
            imgui.set_next_window_pos(imgui.ImVec2(*self.positions[p.name]), imgui.Cond_.first_use_ever)
        elif p.movable:
            imgui.set_next_window_pos(imgui.ImVec2(*pos), imgui.Cond_.first_use_ever, imgui.ImVec2(*pivot))
        else:
            imgui.set_next_window_pos(imgui.ImVec2(*pos), imgui.Cond_.always, imgui.ImVec2(*pivot))
        imgui.set_next_window_size_constraints(imgui.ImVec2(0, 0), imgui.ImVec2(win_w - 16, win_h - 16))
        imgui.begin(p.name, None, flags)
        if p.title:
            imgui.push_font(self.font, self.font_px * 1.35)
            imgui.text_colored(imgui.ImVec4(*p.colour), p.title)
            imgui.pop_font()
        for line in p.lines:
            imgui.text(line)
        if p.rows and imgui.begin_table(f"{p.name}-rows", 2, imgui.TableFlags_.sizing_fixed_fit):
            for key, what in p.rows:
                imgui.table_next_row()
                imgui.table_next_column()
                imgui.text_colored(imgui.ImVec4(1.0, 0.85, 0.45, 1.0), key)
                imgui.table_next_column()
                imgui.text(what)
            imgui.end_table()
        if p.build is not None:
            p.build(imgui, self)
        for label, values in p.plots:
            import numpy as np
            arr = np.asarray(values, np.float32)
            top = max(1.0, float(arr.max()) * 1.15) if len(arr) else 1.0
            imgui.plot_lines(f"##{p.name}-{label}", arr, overlay_text=_plot_text(label, arr), scale_min=0.0,
                             scale_max=top, graph_size=imgui.ImVec2(300, 44))
        x, y = imgui.get_window_pos()
        w, h = imgui.get_window_size()
        imgui.end()
        self.drawn[p.name] = self.seen[p.name] = Drawn(p.text, (int(x), int(y), int(w), int(h)))
        if p.movable:
            self.positions[p.name] = (float(x), float(y))

    # ---- overlay mode: input and kept positions -----------------------------------------------------

    def note(self, name: str) -> None:
        """Keep the rectangle of the widget just made, as ``name`` (for --stats-json and tests)."""
        imgui = self._imgui
        (x0, y0), (x1, y1) = imgui.get_item_rect_min(), imgui.get_item_rect_max()
        self.items[name] = (int(x0), int(y0), int(x1 - x0), int(y1 - y0))

    def mouse_pos(self, x: float, y: float) -> None:
        """The pointer at (x, y) framebuffer pixels (only fed while in overlay mode)."""
        self._imgui.set_current_context(self.ctx)
        self._imgui.get_io().add_mouse_pos_event(x, y)

    def mouse_button(self, button: int, pressed: bool) -> None:
        self._imgui.set_current_context(self.ctx)
        self._imgui.get_io().add_mouse_button_event(button, pressed)

    def load_positions(self, path) -> None:
        """Movable panels' positions saved by :meth:`save_positions`; a missing or bad file: none."""
        try:
            data = json.loads(Path(path).read_text())
            self.positions = {str(k): (float(v[0]), float(v[1])) for k, v in data.get("positions", {}).items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, IndexError, AttributeError) as exc:
            log.warning("overlay positions in %s not used: %s", path, exc)

    def save_positions(self, path) -> None:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"positions": {k: list(v) for k, v in sorted(self.positions.items())}},
                                      indent=1) + "\n")
            tmp.replace(path)
        except OSError as exc:
            log.warning("could not save the overlay positions to %s: %s", path, exc)

    def close(self) -> None:
        if self._renderer is not None:
            self._imgui.set_current_context(self.ctx)
            try:
                self._renderer.shutdown()
            except Exception:  # the GL context may already be gone
                log.debug("overlay renderer shutdown failed", exc_info=True)
            self._renderer = None
        self._imgui.destroy_context(self.ctx)
