/**
 * The frame every page shares, the activity chart (server-side SVG), and the
 * small formatters. Every value goes through Hono's `html` template, which
 * escapes it: only markup written here is ever markup.
 *
 * @module
 */
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { ActivityPoint } from "../core/operator.ts";

/** What a page may be, once rendered. */
export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/** What every page needs from the request. */
export interface PageContext {
  /** Where the dashboard is mounted ("" at the root). */
  readonly base: string;
  /** The token every form posts back. */
  readonly csrf: string;
  readonly readOnly: boolean;
  /** Seconds between live refreshes; 0: none. */
  readonly refresh: number;
  /** The dashboard's clock, where the chart ends. */
  readonly now: number;
}

/** A whole page: header, navigation, `body` in `<main>`, the stylesheet and the script. */
export function layout(ctx: PageContext, title: string, body: Html): Html {
  const b = ctx.base;
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>${title} · Herald</title>
        <link rel="stylesheet" href="${b}/assets/style.css">
        <script src="${b}/assets/live.js" defer></script>
      </head>
      <body data-refresh="${ctx.refresh}">
        <header>
    <strong>Herald</strong>
    <nav><a href="${b}/">Overview</a><a href="${b}/routes">Routes</a><a href="${b}/destinations">Destinations</a></nav>
    ${ctx.readOnly ? html`<span class="muted">read-only</span>` : ""}
        </header>
        <main>
    ${body}
        </main>
      </body>
    </html>
  `;
}

/** A POST form of one button, carrying the CSRF token and `fields`. */
export function action(
  ctx: PageContext,
  path: string,
  label: string,
  fields: Record<string, string> = {},
  danger = false,
): Html {
  if (ctx.readOnly) return html``;
  return html`<form class="inline" method="post" action="${ctx.base}${path}">
<input type="hidden" name="csrf" value="${ctx.csrf}">
${Object.entries(fields).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
<button type="submit"${
    danger
      ? html`
        class="danger"
      `
      : ""
  }>${label}</button></form>`;
}

/**
 * Routes sent (below) and failed (stacked above) per minute over the last
 * `minutes`, one bar per minute, as SVG; the scale is the busiest minute.
 */
export function chart(points: readonly ActivityPoint[], minutes: number, now: number): Html {
  const width = 900;
  const height = 180;
  const top = 14;
  const bottom = 20;
  const end = Math.floor(now / 60_000) * 60_000;
  const start = end - (minutes - 1) * 60_000;
  const slot = width / minutes;
  const peak = Math.max(1, ...points.map((p) => p.sent + p.failed));
  const scale = (n: number) => (n / peak) * (height - top - bottom);
  const bars = points.flatMap((p) => {
    const i = Math.round((p.at.getTime() - start) / 60_000);
    if (i < 0 || i >= minutes) return [];
    const x = (i * slot).toFixed(1);
    const w = Math.max(1, slot - 1).toFixed(1);
    const sent = scale(p.sent);
    const failed = scale(p.failed);
    const title = `${clock(p.at)}: ${p.sent} sent, ${p.failed} failed`;
    return [html`
      <g>
        <title>${title}</title>
        <rect class="sent" x="${x}" y="${(height - bottom - sent).toFixed(1)}" width="${w}"
          height="${sent.toFixed(1)}"></rect>
        <rect class="failed" x="${x}" y="${(height - bottom - sent - failed).toFixed(
          1,
        )}" width="${w}"
          height="${failed.toFixed(1)}"></rect>
      </g>
    `];
  });
  const hours = minutes / 60;
  const label = hours >= 1 && Number.isInteger(hours) ? `${hours} h ago` : `${minutes} min ago`;
  return html`
    <svg class="chart" viewBox="0 0 ${width} ${height}" role="img"
      aria-label="Routes sent and failed per minute over the last ${label.replace(" ago", "")}">
    <line x1="0" y1="${height - bottom}" x2="${width}" y2="${height - bottom}"></line>
    <text x="0" y="10">${peak} per minute</text>
    <text x="0" y="${height - 4}">${label}</text>
    <text x="${width}" y="${height - 4}" text-anchor="end">now</text>
    ${bars}
    </svg>
    <p class="legend"><span class="sent">■ sent</span><span class="failed">■ failed</span></p>
  `;
}

/** `2026-12-01 09:30:12Z`: ISO, to the second, in UTC. */
export function clock(d: Date | null): string {
  return d === null ? "-" : `${d.toISOString().slice(0, 19).replace("T", " ")}Z`;
}

/** `1h 4m`, `12s`, `850 ms`: a duration for people. */
export function age(ms: number | null): string {
  if (ms === null) return "-";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** The message of an action just done, if any. */
export function flashBox(flash: string | undefined): Html {
  return flash ? html`<p class="flash" role="status">${flash}</p>` : html``;
}
