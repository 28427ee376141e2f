/**
 * The dashboard's one stylesheet and one script, served from its own origin
 * so the Content-Security-Policy can forbid every inline style and script.
 * Pages read correctly without the script; with it, they refresh in place.
 *
 * @module
 */

/** The stylesheet: system fonts, a light and a dark scheme, nothing fetched. */
export const STYLE = `
:root { color-scheme: light dark; --fg: #1d2125; --muted: #5c6670; --bg: #fff; --panel: #f4f6f8;
  --line: #d6dbe0; --ok: #1f883d; --bad: #cf222e; --warn: #9a6700; --link: #0b5cad; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9aa5b1; --bg: #0d1117;
  --panel: #161b22; --line: #30363d; --ok: #3fb950; --bad: #f85149; --warn: #d29922; --link: #58a6ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1.5rem; align-items: baseline; padding: .75rem 1.25rem;
  border-bottom: 1px solid var(--line); background: var(--panel); }
header strong { font-size: 1.1rem; }
header nav a { margin-right: 1rem; }
main { padding: 1rem 1.25rem 3rem; max-width: 1200px; }
a { color: var(--link); text-decoration: none; } a:hover { text-decoration: underline; }
h1 { font-size: 1.3rem; margin: .25rem 0 1rem; } h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: flex; flex-wrap: wrap; gap: .75rem; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .6rem .9rem; min-width: 8rem; }
.card .n { font-size: 1.5rem; font-variant-numeric: tabular-nums; display: block; }
.card .l { color: var(--muted); }
.s-sent, .s-closed { color: var(--ok); } .s-failed, .s-poisoned, .s-open, .s-disabled { color: var(--bad); }
.s-half_open, .s-paused, .s-queued { color: var(--warn); }
.muted { color: var(--muted); }
.flash { padding: .5rem .8rem; border: 1px solid var(--line); background: var(--panel); border-radius: 6px; }
form.inline { display: inline; }
form.filters { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; margin-bottom: 1rem; }
form.filters label { display: flex; flex-direction: column; color: var(--muted); font-size: .85rem; }
input, select, button { font: inherit; padding: .25rem .45rem; color: var(--fg); background: var(--bg);
  border: 1px solid var(--line); border-radius: 4px; }
button { cursor: pointer; background: var(--panel); } button.danger { color: var(--bad); }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .75rem;
  overflow: auto; max-height: 28rem; white-space: pre-wrap; word-break: break-word; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dt { color: var(--muted); } dd { margin: 0; }
svg.chart { width: 100%; height: auto; max-height: 220px; }
svg.chart .sent { fill: var(--ok); } svg.chart .failed { fill: var(--bad); }
svg.chart text { fill: var(--muted); font-size: 11px; } svg.chart line { stroke: var(--line); }
.legend span { margin-right: 1rem; } .legend .sent { color: var(--ok); } .legend .failed { color: var(--bad); }
`;

/**
 * The live refresh: `data-refresh` seconds after the last one came back (or
 * ten times as long as it took, if that is longer), while the tab is visible
 * and no form field has focus, fetch the page again and swap in its `<main>`.
 */
export const SCRIPT = `
(() => {
  const seconds = Number(document.body.dataset.refresh);
  if (!(seconds > 0)) return;
  const busy = () => document.activeElement && document.activeElement.closest("form");
  // An action's message belongs to the moment it was done: drop it from the
  // address, so neither a refresh nor a reload shows it again.
  const here = new URL(location.href);
  if (here.searchParams.has("done")) {
    here.searchParams.delete("done");
    here.searchParams.delete("n");
    history.replaceState(null, "", here);
  }
  const refresh = async () => {
    const began = performance.now();
    if (document.visibilityState === "visible" && !busy()) {
      try {
        const response = await fetch(location.href, { signal: AbortSignal.timeout(30000) });
        if (response.ok) {
          const next = new DOMParser().parseFromString(await response.text(), "text/html");
          const fresh = next.querySelector("main");
          const main = document.querySelector("main");
          if (fresh && main) main.replaceWith(fresh);
        }
      } catch { /* the next round tries again */ }
    }
    // A page that is slow to build (a filter that matches little on a big
    // table) refreshes less often: the database spends at most a tenth of its
    // time on one open tab.
    setTimeout(refresh, Math.max(seconds * 1000, (performance.now() - began) * 10));
  };
  setTimeout(refresh, seconds * 1000);
})();
`;
