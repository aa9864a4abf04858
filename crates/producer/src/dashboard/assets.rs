//! The dashboard's stylesheet and script, served from the binary (the dashboard works offline:
//! no CDN, no build step). They are files, never inline, so the Content-Security-Policy can
//! allow `'self'` alone (see `guard`); keep pages free of `style=` and `on...=` attributes too.

/// `/assets/style.css`.
pub(super) const STYLE: &str = r#"
:root { --fg: #1c2024; --muted: #667085; --line: #e4e7ec; --bg: #f9fafb; --ok: #067647;
        --bad: #b42318; --run: #175cd3; --warn: #b54708; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 24px; padding: 12px 24px; background: #101828; color: #fff; }
header a { color: #d0d5dd; text-decoration: none; } header a:hover { color: #fff; }
header .brand { font-weight: 700; color: #fff; font-size: 16px; }
header .mode { margin-left: auto; font-size: 12px; color: #98a2b3; }
main { padding: 20px 24px; max-width: 1200px; }
h1 { font-size: 20px; margin: 0 0 16px; } h2 { font-size: 15px; margin: 24px 0 8px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; min-width: 140px; }
.card .n { font-size: 22px; font-weight: 600; } .card .l { color: var(--muted); font-size: 12px; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 500; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.state { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; background: #f2f4f7; }
.state.completed, .state.done { background: #ecfdf3; color: var(--ok); }
.state.failed, .state.cancelled { background: #fef3f2; color: var(--bad); }
.state.running { background: #eff8ff; color: var(--run); }
.state.queued, .state.pending { background: #fffaeb; color: var(--warn); }
.muted { color: var(--muted); } .mono { font-family: ui-monospace, "SF Mono", Menlo, monospace; font-size: 12px; }
.filters a { margin-right: 10px; } .filters a.on { font-weight: 700; }
.banner { padding: 8px 12px; border-radius: 6px; background: #eff8ff; border: 1px solid #b2ddff; margin-bottom: 12px; }
.banner.bad { background: #fef3f2; border-color: #fecdca; }
.chat { display: flex; flex-direction: column; gap: 8px; }
.turn { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; white-space: pre-wrap; word-break: break-word; }
.turn.prompt { border-left: 4px solid var(--run); } .turn.text { border-left: 4px solid var(--ok); }
.turn.tool { border-left: 4px solid var(--muted); font-size: 12px; color: var(--muted); }
.turn.marker { background: #fffaeb; border-color: #fedf89; }
.turn .who { font-size: 11px; color: var(--muted); display: block; margin-bottom: 2px; white-space: normal; }
ul.events { list-style: none; padding: 0; margin: 0; max-height: 320px; overflow: auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
ul.events li { padding: 4px 10px; border-bottom: 1px solid var(--line); font-size: 12px; }
form.inline { display: inline; } button { font: inherit; padding: 3px 10px; border-radius: 6px; border: 1px solid #d0d5dd; background: #fff; cursor: pointer; }
button:disabled { cursor: not-allowed; color: var(--muted); } input[type=password] { font: inherit; padding: 2px 6px; width: 120px; }
progress { width: 120px; height: 8px; vertical-align: middle; accent-color: var(--ok); }
svg.chart { background: #fff; border: 1px solid var(--line); border-radius: 8px; }
"#;

/// `/assets/live.js`: keeps a page current without reloading it. The server renders every
/// part of a page; this only re-fetches the parts marked `data-fragment` when an event arrives
/// on the page's Server-Sent Events stream (`data-events` on `<body>`), and lists the events
/// themselves in `#events` (as text, never as HTML).
pub(super) const LIVE: &str = r#"
(function () {
  var src = document.body.getAttribute('data-events');
  if (!src || !window.EventSource) return;
  var parts = document.querySelectorAll('[data-fragment]');
  var timer = null;
  function refresh() {
    parts.forEach(function (el) {
      fetch(el.getAttribute('data-fragment'), { cache: 'no-store' })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (t) { if (t !== null) el.innerHTML = t; });
    });
  }
  function describe(ev) {
    var bits = [(ev.at || '').slice(11, 19), ev.kind];
    if (ev.task_id) bits.push('task ' + ev.task_id);
    if (ev.reason) bits.push(ev.reason);
    if (ev.file_path) bits.push(ev.file_path);
    return bits.join(' ');
  }
  var es = new EventSource(src);
  es.onmessage = function (m) {
    var list = document.getElementById('events');
    if (list) {
      try {
        var li = document.createElement('li');
        li.textContent = describe(JSON.parse(m.data));
        list.insertBefore(li, list.firstChild);
      } catch (e) {}
    }
    clearTimeout(timer);
    timer = setTimeout(refresh, 150);
  };
})();
"#;
