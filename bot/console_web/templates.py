"""The console's HTML, as small functions that escape everything they are given.

Plain string functions instead of a template engine: a handful of pages, no new
dependency, and ``esc`` on every value that comes from the database or a request.
"""

from __future__ import annotations

from html import escape

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;background:#f8fafc}
header{background:#1e3a8a;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.4rem 1rem;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
header form{margin-left:auto}
main{max-width:980px;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.3rem 0 1rem}
h2{font-size:1.05rem;margin:0 0 .5rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:.6rem;margin-bottom:1rem}
.card,.panel{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:.7rem}
.card b{display:block;font-size:1.3rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,400px),1fr));gap:.8rem}
.chart{width:100%;height:auto;font-size:13px}
.chart text{fill:#374151}.chart .muted{fill:#9ca3af}.chart .axis{stroke:#d1d5db}
table{width:100%;border-collapse:collapse;background:#fff}
th,td{text-align:left;padding:.4rem;border-bottom:1px solid #e5e7eb;vertical-align:top}
.table{overflow-x:auto}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:1rem;align-items:end}
label{display:flex;flex-direction:column;font-size:.8rem;color:#4b5563}
input,select,button{font:inherit;padding:.35rem .5rem;border:1px solid #cbd5e1;border-radius:6px;background:#fff}
button{background:#1e3a8a;color:#fff;border-color:#1e3a8a;cursor:pointer}
.msg{border-radius:8px;padding:.5rem .7rem;margin:.4rem 0;max-width:46rem;background:#fff;border:1px solid #e5e7eb}
.msg.customer{background:#eff6ff}.msg.staff{background:#ecfdf5}.msg.note{background:#fefce8}
.meta{font-size:.78rem;color:#6b7280}
.text{white-space:pre-wrap;word-wrap:break-word}
.period a{margin-right:.6rem}.period a.on{font-weight:700;text-decoration:none;color:#111}
.notice{background:#fff7ed;border:1px solid #fdba74;padding:.7rem;border-radius:8px}
"""


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, *, role: str | None = None, csrf: str = "") -> str:
    """A whole page: the navigation a role may use, and a logout button with its CSRF token."""
    nav = ""
    if role is not None:
        links = []
        if role == "admin":
            links.append('<a href="/console">Overview</a>')
        links.append('<a href="/console/tickets">Tickets</a>')
        if role == "admin":
            links.append('<a href="/console/gaps">Knowledge gaps</a>')
        nav = (
            "".join(links) + '<form method="post" action="/console/logout">'
            f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
            "<button>Log out</button></form>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{esc(title)} · Support console</title>'
        '<link rel="stylesheet" href="/console/style.css"></head><body>'
        f"<header><span>Support console</span>{nav}</header>"
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )


def card(label: str, value: str) -> str:
    return f'<div class="card">{esc(label)}<b>{esc(value)}</b></div>'


def panel(heading: str, content: str) -> str:
    """A titled box; ``content`` is already HTML (a chart or a table)."""
    return f'<section class="panel"><h2>{esc(heading)}</h2>{content}</section>'


def select(name: str, choices: list[str], chosen: str, blank: str = "any") -> str:
    options = [f'<option value="">{esc(blank)}</option>']
    for choice in choices:
        on = " selected" if choice == chosen else ""
        options.append(f'<option value="{esc(choice)}"{on}>{esc(choice)}</option>')
    return f'<label>{esc(name)}<select name="{esc(name)}">{"".join(options)}</select></label>'


def no_access(message: str) -> str:
    return page("Console", f'<p class="notice">{esc(message)}</p>')
