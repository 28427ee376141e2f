#!/usr/bin/env node
/**
 * The `herald` executable of the npm package (`npx herald`); `mod.ts` is the
 * same program for Deno and Bun.
 *
 * @module
 */
import process from "node:process";
import { main } from "./main.ts";

process.exitCode = await main(process.argv.slice(2));
