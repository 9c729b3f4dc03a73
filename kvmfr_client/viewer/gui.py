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

from kvmfr_client.config.options import UI_FONT_PX as FONT_PX   # win:uiSize's default

# Where Debian/Ubuntu (fonts-dejavu-core), Fedora and Arch put DejaVu Sans.
_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)


def _fc_match(pattern: str) -> tuple[str, str] | None:
    """fontconfig's (family, file) for ``pattern``, None without fc-match or a TrueType answer."""
    if not shutil.which("fc-match"):
        return None
    try:
        out = subprocess.run(["fc-match", "-f", "%{family}|%{file}", pattern],
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    family, _, path = out.rpartition("|")
    if path.lower().endswith(".ttf") and os.path.isfile(path):
        return family, path
    return None


def find_font(name: str = "") -> str | None:
    """A proportional TTF to draw with: KVMFR_FONT (when set, that file or none); ``name``
    (``win:uiFont``: a file, or a family fontconfig knows; one that is not there is logged and the
    default used); DejaVu Sans where distributions put it, or what fontconfig matches for "sans-serif";
    None when there is none."""
    env = os.environ.get("KVMFR_FONT")
    if env:
        if os.path.isfile(env):
            return env
        log.warning("KVMFR_FONT=%s is not a font file", env)
        return None
    if name:
        path = os.path.expanduser(name)
        if os.path.isfile(path):
            return path
        found = _fc_match(f"{name}:fontformat=TrueType")
        if found and name.lower() in found[0].lower().split(","):
            return found[1]
        log.warning("win:uiFont: no TrueType font %r (not a file, and fc-match does not know the family); "
                    "using the default font", name)
    for path in _FONT_CANDIDATES:
        if os.path.isfile(path):
            return path
    found = _fc_match("sans-serif:fontformat=TrueType")
    if found:
        return found[1]
    found = sorted(glob.glob("/usr/share/fonts/**/DejaVuSans.ttf", recursive=True))
    return found[0] if found else None


@dataclass
class Panel:
    """One block the overlay shows.

    ``anchor``: "center", "bottom", "top", "topleft" or "topright"; ``title``: a first line drawn larger
    (may be empty); ``lines``: the rest; ``rows``: (key, what it does) pairs drawn as two columns;
    ``plots``: (label, samples in ms) drawn as line graphs (ImPlot) with the label, last and peak value;
    ``colour``: RGBA 0..1 of the title. Rows that do not fit the window are laid out again to fit: in
    more column pairs and/or a smaller font (``Drawn.clipped`` says whether the panel still did not fit).
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


FIT_PASSES = 5   # unseen layout passes after a change: the first measures, the next ones fit and refine


@dataclass
class Drawn:
    """What one panel drew last frame: its text, its window rectangle (x, y, w, h) in pixels, and whether
    its content was taller than that rectangle (cut off)."""

    text: list[str]
    rect: tuple[int, int, int, int]
    clipped: bool = False


class Gui:
    def __init__(self, font_px: float = FONT_PX, font_path: str | None = "auto", font_name: str = "") -> None:
        """``font_px``: win:uiSize; ``font_name``: win:uiFont; ``font_path`` "auto": look it up
        (:func:`find_font`), None: Dear ImGui's built-in font."""
        from imgui_bundle import imgui, implot
        self._imgui = imgui
        self._implot = implot
        self.ctx = imgui.create_context()
        imgui.set_current_context(self.ctx)
        self.plot_ctx = implot.create_context()
        io = imgui.get_io()
        io.set_ini_filename("")        # positions are ours to keep (not an imgui.ini in the cwd)
        io.set_log_filename("")
        io.config_flags |= imgui.ConfigFlags_.no_mouse_cursor_change
        self.font_path = find_font(font_name) if font_path == "auto" else font_path
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
        self._fit: dict[str, tuple[int, float]] = {}   # panels laid out to fit: (column pairs, font scale)

    def draw(self, panels: list[Panel], win_w: int, win_h: int, dt: float = 1 / 60) -> None:
        """Draw ``panels`` over what the default framebuffer holds. No panels: nothing at all."""
        self.drawn = {}
        panels = [p for p in panels if p.text]
        if not panels or win_w <= 0 or win_h <= 0:
            return
        imgui = self._imgui
        imgui.set_current_context(self.ctx)
        self._implot.set_current_context(self.plot_ctx)
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
            self._fit = {}      # measured again in the unseen frames
            for _ in range(FIT_PASSES):  # a panel laid out again to fit needs more unseen frames to learn its size
                fit = dict(self._fit)
                self._build(panels, win_w, win_h)
                imgui.render()
                if self._fit == fit:
                    break
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
        cols, scale = self._fit.get(p.name, (1, 1.0))
        px = self.font_px * scale
        imgui.push_font(self.font, px)
        if p.title:
            imgui.push_font(self.font, px * 1.35)
            imgui.text_colored(imgui.ImVec4(*p.colour), p.title)
            imgui.pop_font()
        for line in p.lines:
            imgui.text(line)
        need_w = self._rows(p, cols, win_w, win_h) if p.rows else 0.0
        if p.build is not None:
            p.build(imgui, self)
        if p.plots:
            self._plots(p)
        style = imgui.get_style()
        x, y = imgui.get_window_pos()
        w, h = imgui.get_window_size()
        content_h = imgui.get_cursor_pos_y() - style.item_spacing.y + style.window_padding.y
        imgui.pop_font()
        imgui.end()
        clipped = content_h > h + 1 or need_w > w - 2 * style.window_padding.x + 1
        if clipped and p.name in self._fit:
            # The fit's estimate scales the rows with the font, but padding and spacing do not scale: shrink
            # by what is still missing (seen in this frame, used in the next), down to half size.
            cols, scale = self._fit[p.name]
            shrink = min(h / content_h if content_h > 0 else 1.0,
                         (w - 2 * style.window_padding.x) / need_w if need_w > 0 else 1.0)
            if shrink < 1.0:
                self._fit[p.name] = (cols, max(0.5, 0.97 * scale * shrink))
        self.drawn[p.name] = self.seen[p.name] = Drawn(p.text, (int(x), int(y), int(w), int(h)), clipped)
        if p.movable:
            self.positions[p.name] = (float(x), float(y))

    def _rows(self, p: Panel, cols: int, win_w: int, win_h: int) -> float:
        """(key, what) rows as a table of ``cols`` column pairs (filled column by column); returns the width
        they need. Laid out in one pair at full size, a panel that does not fit the window gets, in the next
        frame (:meth:`draw` lays out unseen first), the number of pairs (1..4) and the font scale that show
        it largest while fitting both ways."""
        imgui = self._imgui
        style = imgui.get_style()
        gap = imgui.calc_text_size("      ").x
        pair_w = (max(imgui.calc_text_size(k).x for k, _ in p.rows) + max(imgui.calc_text_size(v).x for _, v in p.rows)
                  + 2 * style.cell_padding.x)
        per = -(-len(p.rows) // cols)
        y0 = imgui.get_cursor_pos_y()
        if imgui.begin_table(f"{p.name}-rows", 2 * cols, imgui.TableFlags_.sizing_fixed_fit):
            for r in range(per):
                imgui.table_next_row()
                for c in range(cols):
                    i = c * per + r
                    imgui.table_next_column()
                    if i < len(p.rows):
                        imgui.text_colored(imgui.ImVec4(1.0, 0.85, 0.45, 1.0), p.rows[i][0])
                    imgui.table_next_column()
                    if i < len(p.rows):
                        imgui.text(p.rows[i][1] + ("      " if c < cols - 1 else ""))
            imgui.end_table()
        need_w = cols * pair_w + (cols - 1) * gap   # (the table's own rectangle is clipped to the window)
        if p.name in self._fit:
            return need_w
        rows_h = imgui.get_cursor_pos_y() - y0
        total_h = imgui.get_cursor_pos_y() + style.window_padding.y
        max_h, max_w = win_h - 16, win_w - 16 - 2 * style.window_padding.x
        if total_h <= max_h and pair_w <= max_w:
            return need_w
        avail, row_h = max(max_h - (total_h - rows_h), 1.0), rows_h / len(p.rows)

        def scale(n: int) -> float:
            return min(1.0, 0.97 * avail / (-(-len(p.rows) // n) * row_h), 0.97 * max_w / (n * pair_w + (n - 1) * gap))
        best = max(range(1, 5), key=lambda n: (scale(n), -n))
        self._fit[p.name] = (best, max(0.5, scale(best)))
        return need_w

    def _plots(self, p: Panel) -> None:
        """Each (label, samples) as an ImPlot line graph: the label, the last sample and the peak written
        over it, the y axis from 0 to a little above the peak with two ticks."""
        import numpy as np
        imgui, implot = self._imgui, self._implot
        flags = (implot.Flags_.no_title | implot.Flags_.no_legend | implot.Flags_.no_menus
                 | implot.Flags_.no_box_select | implot.Flags_.no_mouse_text | implot.Flags_.no_inputs)
        small = self.font_px * 0.75
        for label, values in p.plots:
            arr = np.asarray(values, np.float32)
            top = max(1.0, float(arr.max()) * 1.3) if len(arr) else 1.0
            imgui.push_font(self.font, small)      # the tick labels
            if implot.begin_plot(f"##{p.name}-{label}", imgui.ImVec2(340, 3.4 * self.font_px), flags):
                implot.setup_axes("", "", implot.AxisFlags_.no_decorations,
                                  implot.AxisFlags_.no_tick_marks | implot.AxisFlags_.no_grid_lines)
                implot.setup_axis_limits(implot.ImAxis_.x1, 0, max(len(arr) - 1, 1), implot.Cond_.always)
                implot.setup_axis_limits(implot.ImAxis_.y1, 0.0, top, implot.Cond_.always)
                implot.setup_axis_ticks(implot.ImAxis_.y1, [0.0, round(top / 1.3, 1)])
                if len(arr):
                    implot.plot_line(f"##{label}", arr)
                imgui.pop_font()
                implot.plot_text(_plot_text(label, arr), max(len(arr) - 1, 1) / 2, top,
                                 imgui.ImVec2(0, self.font_px * 0.7))
                implot.end_plot()
            else:
                imgui.pop_font()

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
        self._implot.destroy_context(self.plot_ctx)
        self._imgui.destroy_context(self.ctx)
