/**
 * The store conformance suite: every `Store` implementation must pass it.
 * It runs on `FakeStore` (tests/store/fake_store_test.ts), `PostgresStore`
 * (tests/postgres/store_test.ts) and `PostgresStore` on the embedded database
 * (tests/embedded/), so the fake cannot drift from the real thing.
 *
 * The cases live by area in tests/_helpers/contract/; adding one is adding an
 * entry to its area's list.
 *
 * @module
 */
import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { SCHEMA_VERSION } from "../../store.ts";
import type { ContractArea, ContractRun, ContractTarget } from "./contract/fixtures.ts";
import { ENQUEUE } from "./contract/enqueue.ts";
import { CLAIM } from "./contract/claim.ts";
import { FINALISE } from "./contract/finalise.ts";
import { SALVAGE } from "./contract/salvage.ts";
import { LISTEN } from "./contract/listen.ts";
import { DESTINATIONS } from "./contract/destinations.ts";
import { LIMITS } from "./contract/limits.ts";
import { RETENTION } from "./contract/retention.ts";

export { rec } from "./contract/fixtures.ts";
export type { ContractTarget, OpenedStore } from "./contract/fixtures.ts";

/** Every area of the contract, in the order they run. */
const AREAS: readonly ContractArea[] = [
  ENQUEUE,
  CLAIM,
  FINALISE,
  SALVAGE,
  LISTEN,
  DESTINATIONS,
  LIMITS,
  RETENTION,
];

/** Registers the suite for `target`. */
export function storeContract(target: ContractTarget): void {
  describe(`Store contract: ${target.name}`, () => {
    let run: ContractRun | undefined;
    beforeEach(async () => {
      const opened = await target.open();
      run = { target, opened, store: opened.store };
      assert.equal(await opened.store.migrate(), SCHEMA_VERSION);
    });
    afterEach(async () => {
      await run?.opened.cleanup();
      run = undefined;
    });
    for (const area of AREAS) {
      describe(area.name, () => {
        for (const c of area.cases) {
          const skip = c.skip?.(target);
          it(c.name, skip === undefined ? {} : { skip }, (t) => c.run(run!, t));
        }
      });
    }
  });
}
