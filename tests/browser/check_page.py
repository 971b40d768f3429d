#!/usr/bin/env python3
"""check_page.py - open difflab's static HTML reports in headless Chromium and
check that they really render.

For every PAGE.html given (opened as a file:// URL) it checks that:
  * the page loads (Page.navigate has no errorText, the load event fires);
  * there are no console errors: console.error/console.assert
    (Runtime.consoleAPICalled), uncaught exceptions (Runtime.exceptionThrown)
    and browser log errors (Log.entryAdded level 'error' - this is where a
    missing image or script file shows up as "Failed to load resource");
  * the page is self-contained: every request is file:, data: or blob: and no
    request fails (Network.loadingFailed).  Other schemes are blocked with
    Network.setBlockedURLs so the check never touches the network;
  * no <img> is broken (complete && naturalWidth === 0; lazy images are
    switched to eager and awaited first);
  * --expect 'SEL[>=N]': document.querySelectorAll(SEL).length >= N (N=1);
  * --text 'SEL=substring': some element matching SEL contains substring in
    its textContent (SEL ends at the first '=' outside [...] and quotes);
  * --js 'EXPR=>WANT': the JavaScript expression EXPR (run after the
    screenshot, so it may change the page: e.g. type into a filter and
    read the result) evaluates to the string WANT;
  * --screenshot OUT.png: a PNG of the full page (clip = viewport width x
    cssContentSize height, capped at 6000 CSS px, device scale 1) is written
    and decoded here (zlib + PNG filters, 8-bit RGB/RGBA); the "ink" share,
    i.e. the fraction of pixels that differ from the most common pixel value
    (the background), must be >= --min-ink (default 0.02).  It catches pages
    that load without errors but draw nothing.  With several pages the index
    is inserted before the suffix: out-1.png, out-2.png, ...
Expectations apply to every page given.

Transport: Chromium is driven through the Chrome DevTools Protocol over
--remote-debugging-pipe (it reads NUL-terminated JSON from fd 3 and writes to
fd 4).  Unlike --remote-debugging-port this opens no TCP port (no port
clashes between parallel ctest jobs, nothing reachable from outside) and
needs no websocket client, so the script uses the Python standard library
only.  Chromium runs with a fresh temporary profile in its own process
group; both are removed/killed on every exit path.

Exit status: 0 all checks passed, 1 some check failed (a missing PAGE file
is a failed check), 2 usage error, Chromium missing, or Chromium did not
start/respond within --timeout seconds (per page; also for start-up).
"""
import argparse, base64, fcntl, json, math, os, pathlib, select, shutil, signal
import struct, subprocess, sys, tempfile, time, zlib
from array import array
from collections import Counter
from itertools import accumulate

OK_SCHEMES = ("file", "data", "blob")
BLOCK = ["http:*", "https:*", "ws:*", "wss:*", "ftp:*"]
MAX_SHOT_H = 6000
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class Fatal(Exception):
    """Chromium missing / dead / unresponsive: exit status 2."""


class CDPError(Exception):
    pass


class Browser:
    def __init__(self, exe, width, height, timeout):
        self.exe, self.width, self.height, self.timeout = exe, width, height, timeout
        self.tmp = tempfile.mkdtemp(prefix="check_page-")
        self.proc, self.rfd, self.wfd = None, -1, -1
        self.buf, self.scan, self.next_id, self.events = bytearray(), 0, 0, []
        self.deadline = 0.0

    def start(self):
        to_r, to_w = os.pipe()          # we write, Chromium reads (its fd 3)
        fr_r, fr_w = os.pipe()          # Chromium writes (its fd 4), we read
        def child_fds():                # runs in the child between fork and exec
            a = fcntl.fcntl(to_r, fcntl.F_DUPFD, 10)   # move out of the way first,
            b = fcntl.fcntl(fr_w, fcntl.F_DUPFD, 10)   # in case a pipe end is 3 or 4
            os.dup2(a, 3)
            os.dup2(b, 4)
            try:                        # die with us even if we get SIGKILLed
                import ctypes
                ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            except Exception:
                pass
        cmd = [self.exe, "--headless=new", "--no-sandbox", "--disable-gpu",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--mute-audio", "--hide-scrollbars",
               "--force-device-scale-factor=1", "--remote-debugging-pipe",
               f"--window-size={self.width},{self.height}",
               "--user-data-dir=" + os.path.join(self.tmp, "profile"), "about:blank"]
        with open(os.path.join(self.tmp, "chromium.log"), "wb") as log:
            # fds 3 and 4 are open here (the pipes took the lowest free fds),
            # so pass_fds=(3, 4) is valid; close_fds drops everything else.
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, pass_fds=(3, 4),
                                         preexec_fn=child_fds, start_new_session=True)
        os.close(to_r); os.close(fr_w)
        self.rfd, self.wfd = fr_r, to_w
        self.deadline = time.monotonic() + self.timeout
        return self.call("Browser.getVersion")

    def _died(self, what):
        try:
            rc = self.proc.wait(2)
        except subprocess.TimeoutExpired:
            rc = "still running"
        tail = self.log_tail()
        return Fatal(f"chromium closed the DevTools pipe (exit status {rc}) while "
                     f"waiting for {what}" + (f"; its log ends:\n  {tail}" if tail else ""))

    def log_tail(self, n=5):
        try:
            with open(os.path.join(self.tmp, "chromium.log"), errors="replace") as f:
                lines = [l.rstrip() for l in f if "dbus" not in l and l.strip()]
            return "\n  ".join(lines[-n:])
        except OSError:
            return ""

    def _next(self, what, until=None):
        """Next message; None once `until` (monotonic) has passed."""
        while True:
            i = self.buf.find(b"\0", self.scan)
            if i >= 0:
                msg, self.buf, self.scan = bytes(self.buf[:i]), self.buf[i + 1:], 0
                return json.loads(msg)
            self.scan = len(self.buf)
            now = time.monotonic()
            if until is not None and now >= until:
                return None
            end = min(self.deadline, until) if until is not None else self.deadline
            if now >= self.deadline:
                raise Fatal(f"chromium did not respond within {self.timeout:g} s "
                            f"(waiting for {what}); killed it")
            if not select.select([self.rfd], [], [], end - now)[0]:
                continue
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise self._died(what)
            self.buf += chunk

    def call(self, method, params=None, session=None):
        self.next_id += 1
        mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self.wfd, data):]
        except OSError:
            raise self._died(method) from None
        while True:
            m = self._next(method)
            if m.get("id") == mid:
                if "error" in m:
                    raise CDPError(f"{method}: {m['error'].get('message')}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def pump(self, pred=None, what="events", seconds=None):
        """Collect events until pred() is true, or for `seconds` seconds."""
        until = time.monotonic() + seconds if seconds is not None else None
        while not (pred and pred()):
            m = self._next(what, until)
            if m is None:
                return
            if "method" in m:
                self.events.append(m)

    def close(self):
        if self.proc is not None:
            for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.proc.pid, sig)   # whole group: renderers, zygote
                except (ProcessLookupError, PermissionError):
                    break
                end = time.monotonic() + grace
                while self.proc.poll() is None and time.monotonic() < end:
                    time.sleep(0.02)
        for fd in (self.rfd, self.wfd):
            if fd >= 0:
                os.close(fd)
        self.rfd = self.wfd = -1
        shutil.rmtree(self.tmp, ignore_errors=True)


def decode_png(data):
    """-> (width, height, bytes per pixel, raw pixel rows); 8-bit RGB/RGBA only."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, hdr = 8, [], None
    while pos + 8 <= len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n                                   # length, type, body, CRC
        if typ == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat.append(body)
        elif typ == b"IEND":
            break
    if hdr is None:
        raise ValueError("no IHDR")
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG (depth {depth}, colour type {ctype}, "
                         f"interlace {interlace})")
    bpp = 3 if ctype == 2 else 4
    stride = w * bpp
    raw = zlib.decompress(b"".join(idat))
    if len(raw) < h * (stride + 1):
        raise ValueError("truncated image data")
    out, prev = bytearray(h * stride), bytearray(stride)
    for y in range(h):
        o = y * (stride + 1)
        ft, line = raw[o], bytearray(raw[o + 1:o + 1 + stride])
        if ft == 1:                                     # Sub: running sum per channel
            for c in range(bpp):
                line[c::bpp] = bytes(v & 255 for v in accumulate(line[c::bpp]))
        elif ft == 2:                                   # Up
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif ft == 3:                                   # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif ft == 4:                                   # Paeth
            for i in range(stride):
                b = prev[i]
                if i >= bpp:
                    a, c = line[i - bpp], prev[i - bpp]
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                else:
                    p = b                               # a = c = 0  ->  b wins
                line[i] = (line[i] + p) & 255
        elif ft != 0:
            raise ValueError(f"bad filter type {ft} in row {y}")
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return w, h, bpp, out


def ink_share(bpp, pix):
    """Share of pixels that differ from the most common pixel value."""
    if bpp == 3:                                        # widen to 4 bytes per pixel
        n = len(pix) // 3
        wide = bytearray(n * 4)
        for c in range(3):
            wide[c::4] = pix[c::3]
        pix = wide
    vals = array("I", bytes(pix))
    if not vals:
        return 0.0
    return 1.0 - Counter(vals).most_common(1)[0][1] / len(vals)


def split_text(spec):
    """'SEL=substring' -> (SEL, substring), '=' inside [...] or quotes ignored."""
    depth, quote = 0, None
    for i, ch in enumerate(spec):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "=" and depth == 0 and i > 0:
            return spec[:i], spec[i + 1:]
    raise argparse.ArgumentTypeError(f"--text wants 'SELECTOR=substring', got {spec!r}")


def split_js(spec):
    expr, sep, want = spec.rpartition("=>")
    if not sep or not expr.strip():
        raise argparse.ArgumentTypeError(f"--js wants 'EXPR=>WANT', got {spec!r}")
    return expr, want


def split_expect(spec):
    sel, sep, n = spec.rpartition(">=")
    if sep and sel.strip() and n.strip().isdigit():
        return sel.strip(), int(n)
    if not spec.strip():
        raise argparse.ArgumentTypeError("empty --expect selector")
    return spec.strip(), 1


class Report:
    def __init__(self):
        self.n = self.failed = 0

    def check(self, good, msg):
        self.n += 1
        self.failed += not good
        print(("ok   " if good else "FAIL ") + msg, flush=True)


def evaluate(br, sid, expr):
    r = br.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                     "awaitPromise": True}, sid)
    if "exceptionDetails" in r:
        d = r["exceptionDetails"]
        raise CDPError(((d.get("exception") or {}).get("description") or
                        d.get("text", "exception")).splitlines()[0])
    return r["result"].get("value")


def where(url, line=None):
    """' (url:line)' with a 1-based line; CDP line numbers are 0-based."""
    if not url:
        return ""
    return f" ({url}:{line + 1})" if isinstance(line, int) else f" ({url})"


def arg_text(a):
    v = a.get("value", a.get("description", a.get("type")))
    return v if isinstance(v, str) else json.dumps(v)


IMAGES_JS = """(async () => {
  const imgs = Array.from(document.images);
  await Promise.all(imgs.filter(i => !i.complete).map(i => new Promise(r => {
    i.loading = 'eager'; i.addEventListener('load', r); i.addEventListener('error', r);
    setTimeout(r, 5000); })));
  return imgs.map(i => [i.currentSrc || i.src || i.outerHTML.slice(0, 80),
                        i.complete && i.naturalWidth === 0]);
})()"""


def check_page(br, path, args, shot, rep):
    print(f"page {path}", flush=True)
    if not path.is_file():
        rep.check(False, f"load: no such file {path}")
        return
    br.deadline = time.monotonic() + args.timeout
    br.events.clear()
    tid = br.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    sid = br.call("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
    run_checks(br, sid, path.resolve().as_uri(), args, shot, rep)
    br.call("Target.closeTarget", {"targetId": tid})   # not reached after Fatal


def run_checks(br, sid, url, args, shot, rep):
    t0 = time.monotonic()
    for domain in ("Runtime", "Log", "Page", "Network"):
        br.call(domain + ".enable", session=sid)
    try:
        br.call("Network.setBlockedURLs", {"urls": BLOCK}, sid)
    except CDPError:
        pass                                # still caught by requestWillBeSent
    br.call("Emulation.setDeviceMetricsOverride", {"width": args.width,
            "height": args.height, "deviceScaleFactor": 1, "mobile": False}, sid)
    first = len(br.events)
    nav = br.call("Page.navigate", {"url": url}, sid)
    if nav.get("errorText"):
        rep.check(False, f"load {url}: {nav['errorText']}")
        return
    mark = len(br.events)                   # load events before this are stale
    br.pump(lambda: any(e["method"] == "Page.loadEventFired" and
                        e.get("sessionId") == sid for e in br.events[mark:]),
            "Page.loadEventFired")
    while evaluate(br, sid, "document.readyState") != "complete":
        br.pump(seconds=0.05)
    br.pump(seconds=0.2)                    # settle: late timers, log entries
    rep.check(True, f"load {url} ({time.monotonic() - t0:.2f} s)")

    imgs = evaluate(br, sid, IMAGES_JS)
    for src, broken in imgs:
        if broken:
            rep.check(False, f"broken image: {src}")
    if not any(b for _, b in imgs):
        rep.check(True, f"images: {len(imgs)}, none broken")
    for sel, n in args.expect:
        try:
            got = evaluate(br, sid, f"document.querySelectorAll({json.dumps(sel)}).length")
            rep.check(got >= n, f"expect {sel}: {got}" + ("" if got >= n else f" < {n}"))
        except CDPError as e:
            rep.check(False, f"expect {sel}: invalid selector: {e}")
    for sel, sub in args.text:
        js = (f"Array.from(document.querySelectorAll({json.dumps(sel)}))"
              f".some(e => e.textContent.includes({json.dumps(sub)}))")
        try:
            rep.check(evaluate(br, sid, js), f"text {sel} contains {sub!r}")
        except CDPError as e:
            rep.check(False, f"text {sel}: invalid selector: {e}")
    if shot:
        m = br.call("Page.getLayoutMetrics", session=sid)
        size = m.get("cssContentSize") or m["contentSize"]
        h = max(1, min(MAX_SHOT_H, math.ceil(size["height"])))
        r = br.call("Page.captureScreenshot", {"format": "png",
                    "captureBeyondViewport": True, "clip": {"x": 0, "y": 0,
                    "width": args.width, "height": h, "scale": 1}}, sid)
        png = base64.b64decode(r["data"])
        try:
            shot.write_bytes(png)
            w, hh, bpp, pix = decode_png(png)
            share = ink_share(bpp, pix)
            rep.check(share >= args.min_ink, f"ink {share:.4f} " +
                      (">=" if share >= args.min_ink else "<") +
                      f" {args.min_ink:g} ({shot}, {w}x{hh})")
        except OSError as e:
            rep.check(False, f"screenshot: cannot write {shot}: {e.strerror}")
        except (ValueError, zlib.error) as e:
            rep.check(False, f"screenshot {shot}: cannot decode PNG: {e}")
    for expr, want in args.js:
        try:
            got = evaluate(br, sid, expr)
            rep.check(str(got) == want, f"js {expr!r} => {got!r}" + ("" if str(got) == want else f" (want {want!r})"))
        except CDPError as e:
            rep.check(False, f"js {expr!r}: {e}")

    br.pump(seconds=0.05)
    ev = [e for e in br.events[first:] if e.get("sessionId") == sid]
    errors = []
    for e in ev:
        p, meth = e.get("params", {}), e["method"]
        if meth == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            frames = (p.get("stackTrace") or {}).get("callFrames") or [{}]
            text = " ".join(arg_text(a) for a in p.get("args", [])) or p["type"]
            errors.append(f"console.{p['type']}: {text}" +
                          where(frames[0].get("url"), frames[0].get("lineNumber")))
        elif meth == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = ((d.get("exception") or {}).get("description") or
                    d.get("text", "exception")).splitlines()[0]
            errors.append(f"uncaught {text}" + where(d.get("url"), d.get("lineNumber")))
        elif meth == "Log.entryAdded" and p["entry"].get("level") == "error":
            en = p["entry"]
            errors.append(f"{en.get('source', 'log')}: {en.get('text')}" +
                          where(en.get("url"), en.get("lineNumber")))
    for msg in dict.fromkeys(errors):
        rep.check(False, f"console error: {msg}")
    if not errors:
        rep.check(True, "no console errors")

    urls, bad = {}, []
    for e in ev:
        p = e.get("params", {})
        if e["method"] == "Network.requestWillBeSent":
            u = p["request"]["url"]
            urls[p["requestId"]] = u
            if u.split(":", 1)[0].lower() not in OK_SCHEMES:
                bad.append(f"external request: {u}")
        elif e["method"] == "Network.loadingFailed" and not p.get("canceled"):
            u = urls.get(p.get("requestId"), "?")
            if u.split(":", 1)[0].lower() in OK_SCHEMES:
                why = p.get("blockedReason") or p.get("errorText")
                bad.append(f"request failed: {u} ({why})")
    for msg in dict.fromkeys(bad):
        rep.check(False, msg)
    if not bad:
        rep.check(True, f"self-contained: {len(urls)} request(s), all file:/data:/blob:")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chromium", help="Chromium binary (default: search PATH)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--timeout", type=float, default=60, help="seconds (start-up; per page)")
    ap.add_argument("--expect", action="append", default=[], type=split_expect,
                    metavar="SEL[>=N]")
    ap.add_argument("--text", action="append", default=[], type=split_text,
                    metavar="SEL=substring")
    ap.add_argument("--js", action="append", default=[], type=split_js,
                    metavar="'EXPR=>WANT'", help="EXPR evaluates to the string WANT")
    ap.add_argument("--screenshot", type=pathlib.Path, metavar="OUT.png")
    ap.add_argument("--min-ink", type=float, default=0.02)
    ap.add_argument("pages", nargs="+", type=pathlib.Path, metavar="PAGE.html")
    args = ap.parse_args()
    if args.width < 1 or args.height < 1 or args.timeout <= 0:
        ap.error("--width, --height and --timeout must be positive")

    exe = args.chromium or next(filter(None, map(shutil.which, NAMES)), None)
    if not exe or not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        print("chromium not found: run scripts/install-deps.sh --browser", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # so `finally` runs
    br, rep = Browser(exe, args.width, args.height, args.timeout), Report()
    try:
        ver = br.start()
        print(f"chromium {ver.get('product')} ({exe})", flush=True)
        for k, page in enumerate(args.pages, 1):
            shot = args.screenshot
            if shot and len(args.pages) > 1:
                shot = shot.with_name(f"{shot.stem}-{k}{shot.suffix or '.png'}")
            check_page(br, page, args, shot, rep)
    except (Fatal, CDPError) as e:
        print(f"ERROR {e}", file=sys.stderr)
        return 2
    finally:
        br.close()
    print(f"{'PASS' if not rep.failed else 'FAIL'}: {rep.n - rep.failed}/{rep.n} "
          f"checks passed", flush=True)
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
