"""A history and its verdict as one self-contained HTML page: a timeline with one lane per process.

Rules of the drawing:

1. One lane per process, one bar (an element of class ``op``) per operation, from its invoke to its
   completion. Colours: ``ok`` green, ``fail`` grey-red (certainly no effect), ``info`` amber; an ``info``
   bar runs to the right edge, since the operation may take effect at any later point.
2. The time axis is *ordinal*: every distinct event time gets one step, so short operations stay visible
   next to long ones. Its ticks read in milliseconds since the history's first event (raw times are in
   ns; each tick keeps its raw time in ``data-ns``); tooltips give both.
3. For an OK verdict each operation's linearization point is marked (class ``lin``): the earliest point of
   the witness order found by the checker, one mark per address for a batch.
4. For ILLEGAL the operations of the minimal illegal sub-history carry class ``offending`` and the
   explanation is printed above the lanes.
5. The page fetches nothing: CSS and script are inline. Clicking a bar highlights the operations on the
   same key and shows its details; the script marks ``<body data-ready="1">`` when it has run.
"""

from __future__ import annotations

import bisect
import html
import math
from collections.abc import Iterable

from wormspace.history import Event, History, Operation, operations
from wormspace.refinement.linearizability import ILLEGAL, CheckResult
from wormspace.refinement.models import show

LANE = 30  # px per process lane
BAR = 20  # px bar height
LEFT = 90  # px before time zero (lane labels)
TOP = 30  # px for the axis

_CSS = """
body { font: 13px system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; margin: 0 0 8px; }
.verdict-OK { color: #1b7d2c; } .verdict-ILLEGAL { color: #b00020; } .verdict-UNKNOWN { color: #a36b00; }
.explanation { background: #fdecea; border-left: 4px solid #b00020; padding: 8px 12px; margin: 8px 0;
  max-width: 1100px; }
.explanation ol { margin: 4px 0 0; padding-left: 20px; font-family: ui-monospace, monospace; }
.legend span { display: inline-block; padding: 1px 8px; margin-right: 6px; border-radius: 3px; }
#scroll { overflow-x: auto; border: 1px solid #ccc; margin-top: 8px; }
#timeline { position: relative; }
.lane { position: absolute; left: 0; right: 0; height: 30px; border-bottom: 1px solid #eee; }
.lane:nth-child(even) { background: #fafafa; }
.lane-label { position: absolute; left: 6px; top: 7px; color: #666; font-family: ui-monospace, monospace; }
.tick, .axis-unit { position: absolute; top: 4px; color: #888; font-size: 11px; white-space: nowrap; }
.op { position: absolute; height: 20px; border-radius: 3px; box-sizing: border-box; overflow: hidden;
  white-space: nowrap; font: 11px/20px ui-monospace, monospace; padding: 0 3px; cursor: pointer;
  border: 1px solid rgba(0,0,0,.25); min-width: 3px; }
.op.ok { background: #a5d6a7; } .op.fail { background: #e6c4c4; color: #555; }
.op.info { background: linear-gradient(90deg, #ffd180 60%, rgba(255,209,128,0)); border-style: dashed; }
.op.offending { outline: 3px solid #b00020; z-index: 2; }
.op.dim { opacity: .25; } .op.focus { outline: 2px solid #1a4fd0; z-index: 3; }
.lin { position: absolute; width: 2px; height: 26px; background: #111; z-index: 4; pointer-events: none; }
#details { font-family: ui-monospace, monospace; margin-top: 8px; min-height: 1.5em; white-space: pre-wrap; }
"""

_JS = """
(function () {
  function init() {
    var bars = document.querySelectorAll('.op');
    var details = document.getElementById('details');
    function clear() {
      for (var i = 0; i < bars.length; i++) { bars[i].classList.remove('dim', 'focus'); }
      details.textContent = '';
    }
    function focus(bar) {
      var key = bar.getAttribute('data-key');
      for (var i = 0; i < bars.length; i++) {
        var same = bars[i].getAttribute('data-key') === key;
        bars[i].classList.toggle('dim', !same);
        bars[i].classList.toggle('focus', bars[i] === bar);
      }
      details.textContent = bar.getAttribute('title');
    }
    document.getElementById('timeline').addEventListener('click', function (ev) {
      var bar = ev.target.closest('.op');
      if (bar) { focus(bar); } else { clear(); }
    });
    document.addEventListener('keydown', function (ev) { if (ev.key === 'Escape') { clear(); } });
    document.body.setAttribute('data-ready', '1');
  }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', init); }
  else { init(); }
})();
"""


def _label(op: Operation) -> str:
    if op.f == "read":
        out = show(op.output if isinstance(op.output, bytes | None) else None, 16)
        return f"R{op.key}→{out}" if op.outcome == "ok" else f"R{op.key}"
    if op.f in ("write", "alloc"):
        prefix = "W" if op.f == "write" else "A"
        return f"{prefix}{op.key}={show(op.value if isinstance(op.value, bytes) else None, 16)}"
    if op.f == "batch_write" and isinstance(op.value, dict):
        return f"B{op.key}+{{{','.join(str(o) for o in sorted(op.value))}}}"
    return {"trim": "T", "capture": "C", "batch_capture": "BC"}.get(op.f, op.f) + str(op.key)


def ms_formatter(times: list[int]) -> tuple[int, int]:
    """-> (origin, decimals): the axis reads ``(t - origin) / 1e6`` ms with enough decimals that the
    history's span shows about four significant digits."""
    if not times:
        return 0, 0
    span_ms = (times[-1] - times[0]) / 1e6
    decimals = 6 if span_ms <= 0 else min(6, max(0, 3 - math.floor(math.log10(span_ms))))
    return times[0], decimals


def format_ms(t: int, origin: int, decimals: int) -> str:
    """``t`` (ns) as milliseconds since ``origin``, e.g. ``27.784 ms``."""
    return f"{(t - origin) / 1e6:.{decimals}f} ms"


def _title(op: Operation, origin: int, decimals: int) -> str:
    parts = [f"op {op.id}, process {op.process}: {op.f} key {op.key}"]
    if isinstance(op.value, dict):
        parts.append("value {" + ", ".join(f"{o}: {show(b)}" for o, b in sorted(op.value.items())) + "}")
    elif op.value is not None or op.f in ("write", "alloc"):
        parts.append(f"value {show(op.value)}")
    outcome = op.outcome + (f" {op.error}" if op.error and op.outcome != "ok" else "")
    if op.f == "read" and op.outcome == "ok" and not isinstance(op.output, dict):
        outcome += f" -> {show(op.output)}"
    if isinstance(op.existing, bytes):
        outcome += f" (register holds {show(op.existing)})"
    if op.results is not None:
        outcome += " results {" + ", ".join(f"{o}: {r}" for o, r in sorted(op.results.items())) + "}"
    parts.append(outcome)
    end = "never" if op.end is None else format_ms(op.end, origin, decimals)
    end_ns = "never" if op.end is None else str(op.end)
    parts.append(f"time {format_ms(op.call, origin, decimals)} .. {end} ({op.call} .. {end_ns} ns)")
    return "; ".join(parts)


def render_html(history: Iterable[Event], result: CheckResult, *, title: str = "WormSpace history") -> str:
    """One self-contained HTML page drawing ``history`` with ``result`` (see the module rules)."""
    ops = operations(history if isinstance(history, History) else History(history))
    times = sorted({op.call for op in ops} | {op.end for op in ops if op.end is not None})
    steps = max(len(times), 1)
    unit = max(6.0, min(40.0, 1600.0 / steps))

    def x(t: int) -> float:
        return LEFT + unit * bisect.bisect_left(times, t)

    right = LEFT + unit * (steps + 1)
    processes = sorted({op.process for op in ops})
    lane_of = {p: i for i, p in enumerate(processes)}
    offending = set() if result.minimal is None else {sub.source.id for sub in result.minimal.operations}
    out: list[str] = []
    esc = html.escape

    for i, p in enumerate(processes):
        out.append(f'<div class="lane" style="top:{TOP + i * LANE}px">'
                   f'<span class="lane-label">p{esc(str(p))}</span></div>')
    origin, decimals = ms_formatter(times)
    out.append('<span class="axis-unit" style="left:6px">ms</span>')
    every = max(1, int(120 / unit))
    for k in range(0, len(times), every):
        out.append(
            f'<span class="tick" style="left:{LEFT + unit * k:.1f}px" data-ns="{times[k]}">'
            f"{format_ms(times[k], origin, decimals)}</span>"
        )
    for op in ops:
        left = x(op.call)
        end = right if op.ret is None else x(op.ret)
        width = max(end - left, 3.0)
        classes = f"op {op.outcome}" + (" offending" if op.id in offending else "")
        top = TOP + lane_of[op.process] * LANE + (LANE - BAR) // 2
        out.append(
            f'<div class="{classes}" style="left:{left:.1f}px;top:{top}px;width:{width:.1f}px" '
            f'data-op="{op.id}" data-key="{op.key}" title="{esc(_title(op, origin, decimals))}">{esc(_label(op))}</div>'
        )
    if result.verdict != ILLEGAL:
        for part in result.partitions:
            if part.order is None:
                continue
            point = None
            for n, sub in enumerate(part.order, start=1):
                point = sub.call if point is None else max(point, sub.call)
                top = TOP + lane_of[sub.process] * LANE + 2
                out.append(
                    f'<div class="lin" style="left:{x(point) + 1:.1f}px;top:{top}px" '
                    f'title="{esc(part.label)}: step {n} of the witness order"></div>'
                )

    header = [
        f"<h1>{esc(title)}: <span class=\"verdict-{esc(result.verdict)}\">{esc(result.verdict)}</span></h1>",
        f"<p>{result.events} events, {result.operations} operations, model {esc(result.model)}, "
        f"{len(result.partitions)} partitions checked "
        f"({sum(p.verdict == 'OK' for p in result.partitions)} OK, "
        f"{sum(p.verdict == 'ILLEGAL' for p in result.partitions)} ILLEGAL, "
        f"{sum(p.verdict == 'UNKNOWN' for p in result.partitions)} UNKNOWN).</p>",
    ]
    if result.minimal is not None:
        items = "".join(f"<li>{esc(d)}</li>" for d in result.minimal.lines())
        header.append(
            f'<div class="explanation"><b>Minimal illegal sub-history ({esc(result.minimal.label)}):</b>'
            f"<ol>{items}</ol><p>{esc(result.minimal.explanation)}</p></div>"
        )
    header.append(
        '<p class="legend"><span style="background:#a5d6a7">ok</span>'
        '<span style="background:#e6c4c4">fail (no effect)</span>'
        '<span style="background:#ffd180">info (indeterminate)</span>'
        + ('<span style="outline:3px solid #b00020">offending</span>' if offending else "")
        + ("<span>| = linearization point</span>" if result.verdict != ILLEGAL else "")
        + "</p>"
    )
    height = TOP + len(processes) * LANE + 4
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}: {esc(result.verdict)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(header)
        + f'\n<div id="scroll"><div id="timeline" style="width:{right + 20:.0f}px;height:{height}px">\n'
        + "\n".join(out)
        + '\n</div></div>\n<div id="details"></div>\n'
        + f"<script>{_JS}</script>\n</body></html>\n"
    )
