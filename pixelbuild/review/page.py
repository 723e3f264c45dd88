"""The HTML shell every review page shares: styles (crisp pixels on a checkerboard), the search box,
the animation player, and small helpers that render a sprite, a sheet animation or an outlined atlas.

Pages are plain HTML written once; the inline script only filters cards and steps animations, so a
page with thousands of sprites costs the browser layout of what is on screen (``content-visibility``)
and the images it scrolls to (``loading="lazy"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

#: The largest side, in CSS pixels, a sprite is upscaled to in a card (integer factors only).
THUMB = 128

_CSS = """
:root{--bg:#17181d;--card:#23252e;--fg:#ecedf2;--muted:#a3a8b8;--line:#3a3d4a;--add:#3fb950;--del:#f85149;--chg:#d29922}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{position:sticky;top:0;z-index:5;display:flex;flex-wrap:wrap;gap:12px 20px;align-items:center;
  padding:10px 16px;background:#101116;border-bottom:1px solid var(--line)}
header h1{font-size:17px;margin:0;font-weight:600}
header .meta{color:var(--muted)}
input[type=search]{font:inherit;padding:6px 10px;width:min(420px,60vw);border-radius:6px;border:1px solid var(--line);
  background:#0b0c10;color:var(--fg)}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:12px;padding:12px 16px}
main.wide{grid-template-columns:1fr}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px;min-width:0;
  content-visibility:auto;contain-intrinsic-size:auto 360px}
.card h2{font-size:15px;margin:0 0 8px;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
  word-break:break-all}
.row{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end;overflow-x:auto}
figure{margin:0;display:flex;flex-direction:column;align-items:center;gap:3px}
figcaption{font-size:12px;color:var(--muted)}
.checker{display:inline-block;position:relative;line-height:0;overflow:hidden;background-color:#fff;
  background-image:conic-gradient(#c8c8c8 25%,#fff 0 50%,#c8c8c8 0 75%,#fff 0);background-size:16px 16px;
  outline:1px solid var(--line)}
img.px,.anim img{image-rendering:crisp-edges;image-rendering:pixelated}
.anim img{position:absolute;left:0;top:0;max-width:none}
.raw img{image-rendering:auto}
svg.frames{position:absolute;left:0;top:0}
svg.frames rect{fill:none;stroke:#ff2bd6;stroke-width:1;vector-effect:non-scaling-stroke}
svg.frames rect.moved{stroke:#ffb000;stroke-width:2}
table.info{border-collapse:collapse;margin-top:8px;width:100%;font-size:12.5px}
table.info th{text-align:left;color:var(--muted);font-weight:500;padding:2px 8px 2px 0;vertical-align:top;
  white-space:nowrap}
table.info td{padding:2px 0;word-break:break-word}
.tag{display:inline-block;font-size:11.5px;padding:0 6px;border-radius:9px;background:#33374a;color:var(--muted);
  margin-right:4px}
.badge{display:inline-block;font-size:12px;font-weight:600;padding:1px 8px;border-radius:9px;margin-right:6px;
  color:#111}
.badge.added{background:var(--add)}.badge.removed{background:var(--del)}.badge.changed{background:var(--chg)}
.badge.stale,.badge.missing{background:#8b8fa3}
del{color:#ffaba6;background:#3d1f22;text-decoration:none;padding:0 2px}
ins{color:#aff5b4;background:#1b3a24;text-decoration:none;padding:0 2px}
.note{color:var(--muted);font-size:12.5px}
[hidden]{display:none!important}
"""

_SCRIPT = """
(function(){
  var q=document.getElementById('q'),shown=document.getElementById('shown');
  var cards=Array.prototype.slice.call(document.querySelectorAll('.card[data-search]'));
  function filter(){
    var terms=q.value.toLowerCase().split(/\\s+/).filter(Boolean),n=0;
    for(var i=0;i<cards.length;i++){
      var text=cards[i].getAttribute('data-search'),ok=true;
      for(var j=0;j<terms.length;j++){if(text.indexOf(terms[j])<0){ok=false;break;}}
      cards[i].hidden=!ok;if(ok)n++;
    }
    if(shown)shown.textContent=n+' of '+cards.length;
  }
  if(q){q.addEventListener('input',filter);if(location.hash.length>1){q.value=decodeURIComponent(location.hash.slice(1));}filter();}
  var anims=Array.prototype.slice.call(document.querySelectorAll('.anim')),live=new Set();
  anims.forEach(function(el){
    el._frames=el.getAttribute('data-frames').split(';').map(function(p){return p.split(',').map(Number);});
    el._fps=Number(el.getAttribute('data-fps'))||10;el._scale=Number(el.getAttribute('data-scale'))||1;
    el._img=el.querySelector('img');el._frame=-1;
  });
  if('IntersectionObserver' in window){
    var io=new IntersectionObserver(function(es){es.forEach(function(e){
      if(e.isIntersecting)live.add(e.target);else live.delete(e.target);});});
    anims.forEach(function(el){io.observe(el);});
  }else{anims.forEach(function(el){live.add(el);});}
  function tick(t){
    live.forEach(function(el){
      var f=Math.floor(t*el._fps/1000)%el._frames.length;
      if(f!==el._frame){el._frame=f;var p=el._frames[f];
        el._img.style.transform='translate('+(-p[0]*el._scale)+'px,'+(-p[1]*el._scale)+'px)';
        el.setAttribute('data-frame',String(f));}
    });
    requestAnimationFrame(tick);
  }
  if(anims.length)requestAnimationFrame(tick);
})();
"""


def scale_for(width: int, height: int, box: int = THUMB) -> int:
    """The integer upscale that fits a ``width`` x ``height`` image in ``box`` CSS pixels (at least 1)."""
    return max(1, box // max(1, width, height))


def page(
    title: str, meta: str, body: str, *, search: str | None = "filter by id, prompt or tag", wide: bool = False
) -> str:
    """A whole HTML document: header with ``title``, ``meta`` (HTML) and an optional search box, then ``body``."""
    box = ""
    if search is not None:
        box = f'<input id="q" type="search" placeholder="{escape(search)}" autofocus> '
        box += '<span id="shown" class="meta"></span>'
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        # No network, ever: everything the page shows lies beside it.
        "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; img-src 'self' file: data:; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n<body>"
        f"<header><h1>{escape(title)}</h1><span class=meta>{meta}</span>{box}</header>\n"
        f"<main{' class=wide' if wide else ''}>\n{body}</main>\n<script>{_SCRIPT}</script></body></html>\n"
    )


def image(url: str, width: int, height: int, scale: int, alt: str, *, pixelated: bool = True) -> str:
    """A lazily loaded image upscaled ``scale`` times on a checkerboard."""
    cls = ' class="px"' if pixelated else ""
    return (
        f'<span class="checker{"" if pixelated else " raw"}"><img{cls} loading="lazy" decoding="async" '
        f'src="{escape(url)}" width="{width * scale}" height="{height * scale}" alt="{escape(alt)}"></span>'
    )


def animation(
    url: str, sheet: tuple[int, int], frames: Sequence[tuple[int, int, int, int]], fps: float, scale: int, alt: str
) -> str:
    """A sprite sheet played frame by frame at ``fps`` (``frames``: x, y, w, h of each frame)."""
    width, height = frames[0][2], frames[0][3]
    offsets = ";".join(f"{x},{y}" for x, y, _w, _h in frames)
    return (
        f'<span class="checker anim" style="width:{width * scale}px;height:{height * scale}px" '
        f'data-frames="{offsets}" data-fps="{fps:g}" data-scale="{scale}" data-frame="0">'
        f'<img loading="lazy" decoding="async" src="{escape(url)}" width="{sheet[0] * scale}" '
        f'height="{sheet[1] * scale}" alt="{escape(alt)}"></span>'
    )


def outlined(
    url: str,
    size: tuple[int, int],
    rects: Iterable[tuple[str, int, int, int, int, bool]],
    scale: int,
    alt: str,
) -> str:
    """An atlas image with each frame outlined (``rects``: name, x, y, w, h, highlighted)."""
    width, height = size
    shapes = "".join(
        f'<rect x="{x + 0.5}" y="{y + 0.5}" width="{max(w - 1, 0)}" height="{max(h - 1, 0)}"'
        f"{' class=moved' if hot else ''}><title>{escape(name)}</title></rect>"
        for name, x, y, w, h, hot in rects
    )
    return (
        f'<span class="checker"><img class="px" loading="lazy" decoding="async" src="{escape(url)}" '
        f'width="{width * scale}" height="{height * scale}" alt="{escape(alt)}">'
        f'<svg class="frames" viewBox="0 0 {width} {height}" width="{width * scale}" height="{height * scale}">'
        f"{shapes}</svg></span>"
    )


def info_table(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of label and (already escaped) HTML value."""
    cells = "".join(f"<tr><th>{escape(label)}</th><td>{value}</td></tr>" for label, value in rows)
    return f'<table class="info">{cells}</table>'
