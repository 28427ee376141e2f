/**
 * Hostile input refused where it is given: Worker options, channel
 * configuration and operator calls. Each case is a row of its table
 * (_cases_worker.ts, _cases_config.ts, _cases_operator.ts); each must be a
 * typed refusal naming its field, echo no secret, and change no row.
 */
import { describe } from "node:test";
import { checkLeaks } from "../_helpers/leaks.ts";
import { RUNTIME } from "../_helpers/spawn.ts";
import { refusalTests, useHostileDb } from "./_hostile.ts";
import { WORKER } from "./_cases_worker.ts";
import { CONFIG } from "./_cases_config.ts";
import { OPERATOR } from "./_cases_operator.ts";

checkLeaks();

describe(`hostile input on ${RUNTIME}`, () => {
  const env = useHostileDb();
  describe("worker options", () => refusalTests(env, WORKER));
  describe("operator calls", () => refusalTests(env, OPERATOR));
  describe("channel configuration", () => refusalTests(env, CONFIG));
});
