"""Terminal plumbing for the operator prompts: a line reader another answer source can cancel
(the console page may answer first) and inline image previews for terminals that show images."""
from __future__ import annotations

import base64
import io
import os
import select
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from PIL import Image

PREVIEW_KINDS = ("kitty", "iterm", "sixel")
PREVIEW_WIDTH_PX = 320


class LineReader:
    """Reads lines from a file descriptor with select(), so a wait can be cancelled between polls.
    Keeps its own buffer: lines typed ahead (or piped in) are never lost between questions."""

    def __init__(self, stream: IO | int | None = None, poll_s: float = 0.05) -> None:
        self.fd = stream if isinstance(stream, int) else (stream or sys.stdin).fileno()
        self.poll_s = poll_s
        self._buf = b""
        self._eof = False

    def readline(self, cancel: threading.Event | None = None) -> str | None:
        """The next line without its newline; None when `cancel` was set first. EOFError at the end."""
        while True:
            if b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                return line.decode("utf-8", "replace").rstrip("\r")
            if self._eof:
                if self._buf:
                    line, self._buf = self._buf, b""
                    return line.decode("utf-8", "replace")
                raise EOFError("no more operator input")
            if cancel is not None and cancel.is_set():
                self.discard_typed()
                return None
            ready, _, _ = select.select([self.fd], [], [], self.poll_s)
            if ready:
                chunk = os.read(self.fd, 4096)
                if chunk:
                    self._buf += chunk
                else:
                    self._eof = True

    def discard_typed(self) -> None:
        """Drop a half-typed line (the question it was meant for was answered elsewhere)."""
        self._buf = b""
        if os.isatty(self.fd):
            import termios

            try:
                termios.tcflush(self.fd, termios.TCIFLUSH)
            except termios.error:
                pass


def detect_preview(env: Mapping[str, str] | None = None, is_terminal: bool = True) -> str | None:
    """Which inline-image protocol the terminal speaks (kitty | iterm | sixel), or None.
    BENCHBOT_PREVIEW=off|kitty|iterm|sixel overrides the detection."""
    env = os.environ if env is None else env
    forced = env.get("BENCHBOT_PREVIEW", "").strip().lower()
    if forced in ("off", "none", "0", "no"):
        return None
    if forced in PREVIEW_KINDS:
        return forced
    if not is_terminal:
        return None
    term, program = env.get("TERM", ""), env.get("TERM_PROGRAM", "")
    if env.get("KITTY_WINDOW_ID") or term == "xterm-kitty" or program == "ghostty":
        return "kitty"
    if program in ("iTerm.app", "WezTerm") or env.get("LC_TERMINAL") == "iTerm2":
        return "iterm"
    if term in ("foot", "mlterm", "yaft-256color") or "sixel" in term:
        return "sixel"
    return None


def _thumbnail(path: str | Path, width_px: int) -> Image.Image:
    img = Image.open(path).convert("RGB")
    if img.width > width_px:
        img = img.resize((width_px, max(1, round(img.height * width_px / img.width))))
    return img


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def sixel(img: Image.Image, colors: int = 64) -> str:
    """A DEC sixel image (palette of `colors`), for terminals without the kitty/iTerm2 protocols."""
    pal_img = img.convert("RGB").quantize(colors=colors)
    full_palette, px = pal_img.getpalette(), pal_img.load()
    assert full_palette is not None and px is not None  # a quantized image has both
    palette = full_palette[: 3 * colors]
    w, h = pal_img.size
    out = [f'\x1bPq"1;1;{w};{h}']
    for i in range(len(palette) // 3):
        r, g, b = (round(v * 100 / 255) for v in palette[3 * i: 3 * i + 3])
        out.append(f"#{i};2;{r};{g};{b}")
    for band in range(0, h, 6):
        rows = range(band, min(band + 6, h))
        used = sorted({px[x, y] for y in rows for x in range(w)})
        for n, c in enumerate(used):
            chars = [chr(63 + sum(1 << (y - band) for y in rows if px[x, y] == c)) for x in range(w)]
            out.append(f"#{c}{''.join(chars)}" + ("$" if n < len(used) - 1 else ""))
        out.append("-")
    out.append("\x1b\\")
    return "".join(out)


def inline_image(path: str | Path, kind: str, width_px: int = PREVIEW_WIDTH_PX) -> str:
    """The escape sequence that shows the PNG at `path` inline in a `kind` terminal."""
    img = _thumbnail(path, width_px)
    if kind == "sixel":
        return sixel(img)
    data = base64.standard_b64encode(_png_bytes(img)).decode("ascii")
    if kind == "iterm":
        return f"\x1b]1337;File=inline=1;size={len(data) * 3 // 4};preserveAspectRatio=1:{data}\x07\n"
    chunks = [data[i:i + 4096] for i in range(0, len(data), 4096)] or [""]
    parts = []
    for n, chunk in enumerate(chunks):
        more = 1 if n < len(chunks) - 1 else 0
        head = f"a=T,f=100,m={more}" if n == 0 else f"m={more}"
        parts.append(f"\x1b_G{head};{chunk}\x1b\\")
    return "".join(parts) + "\n"
