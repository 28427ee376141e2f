/**
 * The routes pages: the filtered list and one route. Each takes what the
 * store answered and returns HTML.
 *
 * @module
 */
import { html } from "hono/html";
import type { AttemptRecord, RouteRecord } from "../core/route.ts";
import { ROUTE_STATUSES } from "../core/route.ts";
import type { NotificationRecord, RouteFilter } from "../core/operator.ts";
import { HELD_UNTIL } from "../core/destination.ts";
import { redactDestination } from "../core/_redact.ts";
import { action, age, clock, flashBox, type Html, layout, type PageContext } from "./_layout.ts";

/** The largest payload shown in full; a bigger one is cut, saying so. */
const MAX_PAYLOAD_CHARS = 64 * 1024;

/** The routes list: filters, one page, the link to the next. */
export function routesPage(
  ctx: PageContext,
  filter: RouteFilter,
  routes: readonly RouteRecord[],
  next: string | undefined,
  flash?: string,
): Html {
  const b = ctx.base;
  const v = (x: string | undefined) => x ?? "";
  const local = (d: Date | undefined) => (d ? d.toISOString().slice(0, 19) : "");
  const query = new URLSearchParams();
  for (const k of ["status", "channel", "destination", "kind"] as const) {
    if (filter[k]) query.set(k, filter[k]);
  }
  if (filter.since) query.set("since", local(filter.since));
  if (filter.until) query.set("until", local(filter.until));
  const bulk = filter.status === "failed" && !filter.kind && !filter.until;
  return layout(
    ctx,
    "Routes",
    html`
      ${flashBox(flash)}<h1>Routes</h1>
      <form class="filters" method="get" action="${b}/routes">
      <label>status<select name="status"><option value="">any</option>${ROUTE_STATUSES.map((s) =>
        html`
          <option value="${s}" ${filter.status === s
            ? html`
              selected
            `
            : ""}>${s}</option>
        `
      )}</select></label>
      <label>channel<input name="channel" value="${v(filter.channel)}"></label>
      <label>destination<input name="destination" value="${v(
        filter.destination,
      )}" placeholder="https://host"></label>
      <label>kind<input name="kind" value="${v(filter.kind)}"></label>
      <label>changed since (UTC)<input type="datetime-local" step="1" name="since" value="${local(
        filter.since,
      )}"></label>
      <label>changed before (UTC)<input type="datetime-local" step="1" name="until" value="${local(
        filter.until,
      )}"></label>
      <button type="submit">Filter</button> <a href="${b}/routes">clear</a>
      </form>
      ${bulk
        ? html`<p>${
          action(
            ctx,
            "/routes/retry-failed",
            "Retry every failed or poisoned route matching these filters",
            {
              ...(filter.channel ? { channel: filter.channel } : {}),
              ...(filter.destination ? { destination: filter.destination } : {}),
              ...(filter.since ? { since: filter.since.toISOString() } : {}),
            },
          )
        }</p>`
        : ""}
      <table class="routes">
        <thead>
          <tr>
            <th>route</th>
            <th>kind</th>
            <th>channel</th>
            <th>destination</th>
            <th>status</th>
            <th class="num">attempts</th>
            <th>last changed</th>
            <th>next attempt</th>
            <th>last error</th>
          </tr>
        </thead>
        <tbody>
      ${routes.map((r) =>
        html`
          <tr data-route="${r.id}">
            <td><a href="${b}/routes/${r.id}">${r.id.slice(0, 8)}…</a></td>
            <td>${r.kind}</td>
            <td>${r.channel}</td>
            <td>${redactDestination(r.destination)}</td>
            <td class="s-${r.status}">${r.status}</td>
            <td class="num">${r.attempts}</td>
            <td>${clock(r.updatedAt)}</td>
            <td>${nextAttempt(r)}</td>
            <td>${(r.lastError ?? "").slice(0, 80)}</td>
          </tr>
        `
      )}
        </tbody>
      </table>
      ${routes.length === 0 ? html`<p class="muted">No routes match.</p>` : ""}
      ${next === undefined
        ? ""
        : html`<p><a rel="next" href="${b}/routes?${query.toString()}${
          query.size ? "&" : ""
        }after=${encodeURIComponent(next)}">Older →</a></p>`}
    `,
  );
}

/** One route: its fields, its notification's payload, its attempts; retry and cancel. */
export function routePage(
  ctx: PageContext,
  r: RouteRecord,
  note: NotificationRecord | undefined,
  attempts: readonly AttemptRecord[],
  flash?: string,
): Html {
  const ids = { id: r.id };
  let payload = note === undefined
    ? "(the notification is gone)"
    : JSON.stringify(note.payload, null, 2);
  if (payload.length > MAX_PAYLOAD_CHARS) {
    payload = `${
      payload.slice(0, MAX_PAYLOAD_CHARS)
    }\n… (cut: ${payload.length} characters in all)`;
  }
  return layout(
    ctx,
    `Route ${r.id}`,
    html`
      ${flashBox(flash)}<h1>Route <code>${r.id}</code></h1>
      <p>${r.status === "queued" ? action(ctx, `/routes/${r.id}/cancel`, "Cancel", ids, true) : ""}
      ${r.status === "sent" ? "" : action(ctx, `/routes/${r.id}/retry`, "Retry now", ids)}</p>
      <dl>
        <dt>status</dt>
        <dd class="s-${r.status}" data-testid="status">${r.status}</dd>
        <dt>kind</dt>
        <dd>${r.kind}</dd>
        <dt>notification</dt>
        <dd><code>${r.notificationId}</code></dd>
        <dt>channel</dt>
        <dd>${r.channel}</dd>
        <dt>destination</dt>
        <dd>${redactDestination(r.destination)}</dd>
        <dt>destination key</dt>
        <dd>${r.destinationKey ?? "-"}</dd>
        <dt>attempts</dt>
        <dd>${r.attempts}${r.maxAttempts === null ? "" : ` of ${r.maxAttempts}`}</dd>
        <dt>priority</dt>
        <dd>${r.priority}</dd>
        <dt>next attempt</dt>
        <dd>${nextAttempt(r)}</dd>
        <dt>last error</dt>
        <dd>${r.lastError ?? "-"}</dd>
        <dt>enqueued</dt>
        <dd>${clock(r.createdAt)}</dd>
        <dt>last changed</dt>
        <dd>${clock(r.updatedAt)}</dd>
        <dt>sent</dt>
        <dd>${clock(r.sentAt)}</dd>
      </dl>
      <h2>Attempts</h2>
      ${attempts.length === 0 ? html`<p class="muted">No attempts yet.</p>` : html`
        <table class="attempts">
          <thead>
            <tr>
              <th class="num">#</th>
              <th>started</th>
              <th class="num">took</th>
              <th>outcome</th>
              <th class="num">HTTP</th>
              <th>error</th>
            </tr>
          </thead>
          <tbody>
        ${attempts.map((a) =>
          html`
            <tr>
              <td class="num">${a.attempt}</td>
              <td>${clock(a.startedAt)}</td>
              <td class="num">${age(a.durationMs)}</td>
              <td class="s-${a.outcome === "retry" ? "queued" : a.outcome}">${a.outcome}</td>
              <td class="num">${a.httpStatus ?? "-"}</td>
              <td>${a.error ?? ""}</td>
            </tr>
          `
        )}
          </tbody>
        </table>
      `}
      <h2>Payload</h2>
      <pre data-testid="payload">${payload}</pre>
    `,
  );
}

function nextAttempt(r: RouteRecord): string {
  if (r.status !== "queued") return "-";
  if (r.nextAttemptAt.getTime() >= HELD_UNTIL) return "held (destination paused or disabled)";
  return clock(r.nextAttemptAt);
}
