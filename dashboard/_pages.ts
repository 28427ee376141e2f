/**
 * The overview and destinations pages (routes: _route_pages.ts). Each takes what the
 * store answered and returns HTML; none of them reads the store itself.
 *
 * @module
 */
import { html } from "hono/html";
import { ROUTE_STATUSES } from "../core/route.ts";
import {
  type ActivityPoint,
  channelCount,
  type QueueStats,
  troubledCount,
} from "../core/operator.ts";
import type { DestinationInfo } from "../core/destination.ts";
import { action, age, chart, flashBox, type Html, layout, type PageContext } from "./_layout.ts";

/** The overview: counts, the chart, the oldest due route, destinations in trouble. */
export function overviewPage(
  ctx: PageContext,
  st: QueueStats,
  points: readonly ActivityPoint[],
  minutes: number,
  flash?: string,
): Html {
  const b = ctx.base;
  const estimated = new Set(st.estimated ?? []);
  const channels = [...new Set(st.byChannel.map((c) => c.channel))].sort();
  const troubled = st.destinations?.troubled ?? [];
  return layout(
    ctx,
    "Overview",
    html`
      ${flashBox(flash)}<h1>Overview</h1>
      <div class="cards">
      ${ROUTE_STATUSES.map((s) =>
        html`
          <a class="card"
            href="${b}/routes?status=${s}"><span class="n s-${s}" data-status="${s}">${estimated
                .has(s)
              ? "~"
              : ""}${st.byStatus[s]}</span><span class="l">${s}</span></a>
        `
      )}
      <div class="card"><span class="n" data-testid="oldest-due">${age(st.oldestDueAgeMs)}</span>
      <span class="l">oldest due route waiting</span></div>
      <div class="card"><span class="n" data-testid="failed-last-hour">${st.failedLastHour}</span>
      <span class="l">failed in the last hour</span></div>
      </div>
      ${estimated.size > 0
        ? html`<p class="muted">~ estimated from the planner's statistics: the table is large.</p>`
        : ""}
      <h2>Sent and failed per minute</h2>
      ${chart(points, minutes, ctx.now)}
      <h2>By channel</h2>
      <table>
        <thead>
          <tr><th>channel</th>${ROUTE_STATUSES.map((s) =>
            html`<th class="num">${s}</th>`
          )}<th class="num">oldest due</th></tr>
        </thead>
        <tbody>
      ${channels.map((c) =>
        html`<tr><td><a href="${b}/routes?channel=${encodeURIComponent(c)}">${c}</a></td>${
          ROUTE_STATUSES.map((s) =>
            html`<td class="num" data-channel="${c}" data-status="${s}">${
              channelCount(st, c, s)
            }</td>`
          )
        }<td class="num">${
          age(st.oldestDueByChannel.find((d) => d.channel === c)?.ageMs ?? null)
        }</td></tr>`
      )}
        </tbody>
      </table>
      ${st.destinations === undefined ? "" : html`<h2>Destinations</h2>
<p>${
        Object.entries(st.destinations.byState).map(([state, n]) =>
          html`
            <span class="s-${state}">${n} ${state}</span> ·
          `
        )
      }${st.destinations.deferredByLimit} due route(s) deferred by rate limits</p>
${
        troubled.length === 0
          ? html`<p class="muted">Every destination is healthy.</p>`
          : destinationTable(ctx, troubled)
      }`}
    `,
  );
}

/** Destinations with their state, queue and one-click pause or resume. */
function destinationTable(
  ctx: PageContext,
  rows: readonly {
    channel: string;
    key: string;
    state: string;
    queued: number;
    deferred: number;
    /** Counted no further than the cap (see `DestinationStats`). */
    capped?: boolean;
    consecutiveFailures: number;
    inFlight?: number | null;
    lastError?: string | null;
  }[],
): Html {
  const b = ctx.base;
  return html`
    <table class="destinations">
      <thead>
        <tr>
          <th>channel</th>
          <th>destination</th>
          <th>state</th>
          <th class="num">failures in a row</th>
          <th class="num">queued</th>
          <th class="num">deferred</th>
          <th>last error</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
    ${rows.map((d) => {
      const target = { channel: d.channel, key: d.key };
      const paused = d.state === "paused" || d.state === "disabled";
      return html`
        <tr data-destination="${d.key}">
          <td>${d.channel}</td>
          <td><a href="${b}/routes?channel=${encodeURIComponent(
            d.channel,
          )}&destination=${encodeURIComponent(d.key)}">${d.key}</a></td>
          <td class="s-${d.state}">${d.state}</td>
          <td class="num">${d.consecutiveFailures}</td>
          <td class="num">${d.capped ? troubledCount(d.queued) : d.queued}</td>
          <td class="num">${d.capped ? troubledCount(d.deferred) : d.deferred}</td>
          <td>${d.lastError ?? ""}</td>
          <td>${paused
            ? action(
              ctx,
              "/destinations/resume",
              d.state === "disabled" ? "Enable" : "Resume",
              target,
            )
            : action(ctx, "/destinations/pause", "Pause", target, true)}</td>
        </tr>
      `;
    })}
      </tbody>
    </table>
  `;
}

/** Every destination. */
export function destinationsPage(
  ctx: PageContext,
  all: readonly DestinationInfo[] | undefined,
  flash?: string,
): Html {
  return layout(
    ctx,
    "Destinations",
    html`${flashBox(flash)}<h1>Destinations</h1>${
      all === undefined
        ? html`<p class="muted">This store keeps no destination health.</p>`
        : all.length === 0
        ? html`<p class="muted">No destinations yet: they appear with their first route.</p>`
        : destinationTable(ctx, all)
    }`,
  );
}

/** The not-found page. */
export function missingPage(ctx: PageContext, what: string): Html {
  return layout(
    ctx,
    "Not found",
    html`
      <h1>Not found</h1>
      <p>${what}</p>
    `,
  );
}
