"""HiDPI: weston at output scale 2 (Wayland), and X11 with Xft.dpi 192 and 144 (glfw's content scale 2 and
1.5). A window sized by win:autoResize shows each guest pixel as one device pixel; the guest cursor is drawn
1:1 right under the local pointer (SETCURSORPOS on entry); pointer motion reaches the guest in guest pixels.
Wayland at 1.5 cannot be tried: weston 10 has integer output scales only (docs/desktop.md)."""

from __future__ import annotations

import pytest

from tests.desktop.conftest import close_desk, make_desk
from tests.desktop.desk import InputRecorder, Viewer, find_pattern, pattern_mismatch, wait_until, xdotool
from tests.support.agent import start_agent
from tests.support.process import stop_process

W, H = 320, 240
CURSOR = 32                      # the agent's cursor shapes are 32x32, hotspot (4, 2) or (0, 0)


@pytest.fixture(scope="module")
def desk():
    desk = make_desk(scale=2)
    yield desk
    close_desk(desk)


def set_xft_dpi(desk, dpi: int) -> None:
    """Xft.dpi in the root window's resource database, which glfw reads at glfwInit (content scale dpi/96)."""
    from Xlib import Xatom
    conn = desk.screen.conn
    root = conn.screen().root
    root.change_property(conn.intern_atom("RESOURCE_MANAGER"), Xatom.STRING, 8, f"Xft.dpi:\t{dpi}\n".encode())
    conn.sync()


@pytest.mark.parametrize("backend,scale", [("wayland", 2.0), ("x11", 2.0), ("x11", 1.5)])
def test_guest_pixels_one_to_one_at_scale(desk, backend, scale, shm_path, tmp_path):
    if backend == "x11":
        set_xft_dpi(desk, int(96 * scale))
    agent = None
    # The pointer away from where the window appears: its entry is part of what is tested.
    xdotool(desk.xserver.env(), "mousemove", "--sync", str(desk.xserver.width - 4), str(desk.xserver.height - 4))
    # The viewer first: the agent sends its cursor shape with its first frame only.
    with InputRecorder() as spice:
        viewer = Viewer(shm_path, tmp_path, desk.env(backend), "spice:host=127.0.0.1", f"spice:port={spice.port}",
                        "input:absoluteOutsideCapture=no", "win:autoResize=yes", "win:size=200x150",
                        "win:alerts=no", f"win:title=kvmfr-hidpi-{backend}")
        try:
            viewer.wait_line("SPICE connected")
            agent = start_agent(shm_path, (W, H), fps=30, source="damage", log=tmp_path / "agent.log")
            viewer.wait_line("frame format")
            x0, y0 = wait_until(lambda: find_pattern(desk.screen.shot(), W, H), 15,
                                "the pattern shown 1:1 in the resized window")
            assert spice.inputs_linked.wait(10)
            # The pointer enters at guest pixel g: the guest cursor is moved there (SETCURSORPOS) and
            # drawn 1:1 with its hotspot under it; everything else is the pattern, pixel for pixel.
            gx, gy = 200, 40     # above the moving square's band, which the comparison leaves out
            xenv = desk.xserver.env()
            # Entering and then moving 1 pixel: glfw on Wayland reports no position with the pointer's entry
            # (only with the next motion), X11 does; the guest cursor goes to the first position the
            # viewer learns, so to gx - 1 (X11) or gx (Wayland).
            xdotool(xenv, "mousemove", "--sync", str(x0 + gx - 1), str(y0 + gy))
            xdotool(xenv, "mousemove", "--sync", str(x0 + gx), str(y0 + gy))
            last = {}

            def cursor_at_pointer():
                shot = desk.screen.shot()
                if find_pattern(shot, W, H) != (x0, y0):
                    return None
                bad, diff = pattern_mismatch(shot, x0, y0, W, H, ignore=(gx - 5, gy - 2, CURSOR + 5, CURSOR + 2))
                ys, xs = diff.nonzero()
                last.update(bad=bad)
                if bad:
                    last.update(x=(int(xs.min()), int(xs.max())), y=(int(ys.min()), int(ys.max())))
                    return None
                # the cursor itself: drawn somewhere in its 32x32 box, not stretched beyond it
                _, full = pattern_mismatch(shot, x0, y0, W, H)
                ys, xs = full.nonzero()
                last.update(cursor=(int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())) if len(xs)
                            else None)
                if len(xs) < 20 or xs.max() - xs.min() < 10 or ys.max() - ys.min() < 15:
                    return None    # not drawn yet, or hidden in the rows the comparison leaves out
                return any(xs.min() >= wx - 4 and ys.min() >= gy - 2 and xs.max() < wx + CURSOR
                           and ys.max() < gy + CURSOR for wx in (gx - 1, gx))
            try:
                wait_until(cursor_at_pointer, 15, "the guest cursor under the pointer, the rest pixel-exact")
            except AssertionError:
                warps = [ln for ln in (tmp_path / "agent.log").read_text().splitlines() if "moved the cursor" in ln]
                raise AssertionError(f"guest cursor at guest {gx},{gy} expected; screen differs: {last}; motion "
                                     f"{spice.motion}; picture at {x0},{y0}; agent: {warps}\n"
                                     + "\n".join(line for line in viewer.lines if "core" not in line)) from None
            # Moving the pointer 20 x 10 device pixels moves the guest's 20 x 10 guest pixels.
            before = spice.motion_total()
            xdotool(xenv, "mousemove", "--sync", str(x0 + gx + 20), str(y0 + gy + 10))
            wait_until(lambda: spice.motion_total() == (before[0] + 20, before[1] + 10), 10,
                       f"motion (20, 10) in guest pixels (got {spice.motion[-4:]})")
            viewer.proc.terminate()
            stats = viewer.finish()
        finally:
            viewer.stop()
            if agent is not None:
                stop_process(agent)
    assert stats["platform"] == backend
    assert stats["window"] == [W, H], "the framebuffer is the guest's size in device pixels"
    assert stats["content_scale"] == [scale, scale]
    # Wayland sizes windows in logical units (half the pixels at scale 2); X11 in pixels, whatever Xft.dpi says.
    assert stats["window_coords"] == ([W // 2, H // 2] if backend == "wayland" else [W, H])
