/** Route and notification ids: UUID version 7, time-ordered. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { uuidv7 } from "../../core/_uuid.ts";
import { isUuid } from "../../core/_validate.ts";

describe("uuidv7", () => {
  it("is a UUID of version 7 and the RFC's variant, its first 48 bits the milliseconds", () => {
    const at = Date.UTC(2026, 10, 30, 12, 0, 0, 123);
    const id = uuidv7(at);
    assert.ok(isUuid(id), id);
    assert.equal(id[14], "7");
    assert.ok("89ab".includes(id[19]!), id);
    assert.equal(parseInt(id.replaceAll("-", "").slice(0, 12), 16), at);
  });

  it("sorts by time across milliseconds, as text and as Postgres sorts uuids", () => {
    const ids = [0, 1, 2, 1000, 86_400_000].map((d) => uuidv7(1_764_504_000_000 + d));
    assert.deepEqual([...ids].sort(), ids);
  });

  it("does not repeat within one millisecond", () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => uuidv7(1_764_504_000_000)));
    assert.equal(ids.size, 10_000);
  });
});
