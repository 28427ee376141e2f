/**
 * Makes embedded/template.tar.gz, the prepared database every new embedded
 * data directory is copied from (see embedded/_template.ts). Run it after
 * changing the pinned PGlite, then update `TEMPLATE` in embedded/_template.ts
 * with what it prints; tests/embedded/template_test.ts fails until both agree.
 *
 *   node_modules/.bin/node tests/embedded/make_template.ts
 *
 * It runs PGlite's own initdb (1 MB WAL segments, so a new database needs
 * about 1 MB of free space to open, not 16), drops the template databases
 * (Herald uses the one database, postgres), closes the database cleanly,
 * keeps only the WAL segment holding the shutdown checkpoint (the others
 * are recycled segments the database does not need), and writes a ustar
 * archive of plain files and directories, sorted, gzipped.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { PGlite } from "@electric-sql/pglite";

const SEGMENT = 1024 * 1024;
const OUT = fileURLToPath(new URL("../../embedded/template.tar.gz", import.meta.url));
const PACKAGE = new URL("../../node_modules/@electric-sql/pglite/package.json", import.meta.url);

const root = mkdtempSync(join(tmpdir(), "herald-template-"));
try {
  const dir = join(root, "data");
  const db = await PGlite.create({ dataDir: dir, initDbStartParams: ["--wal-segsize=1"] });
  const [system] = (await db.query<{ catalog_version_no: number }>(
    "SELECT catalog_version_no FROM pg_control_system()",
  )).rows;
  // Herald uses the one database, postgres: without the two templates a new
  // database is 9 MB in 370 files instead of 24 MB in 970, and creating files
  // is most of a first open's time on some disks.
  for (const name of ["template0", "template1"]) {
    await db.exec(`ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS true IS_TEMPLATE false`);
    await db.exec(`DROP DATABASE ${name}`);
  }
  await db.exec("VACUUM FREEZE");
  await db.exec("CHECKPOINT");
  await db.close();
  const checkpoint = controlCheckpoint(dir);
  const keep = segmentName(1, checkpoint);
  for (const name of readdirSync(join(dir, "pg_wal"))) {
    if (/^[0-9A-F]{24}$/.test(name) && name !== keep) rmSync(join(dir, "pg_wal", name));
  }
  rmSync(join(dir, "postmaster.pid"), { force: true });
  const tar = writeTar(dir);
  const gz = gzipSync(tar, { level: 9 });
  writeFileSync(OUT, gz);
  const version = JSON.parse(readFileSync(PACKAGE, "utf8")).version;
  console.log(`wrote ${OUT}: ${gz.length} bytes (${tar.length} unpacked), WAL segment ${keep}`);
  console.log(
    `TEMPLATE = { pglite: "${version}", postgresMajor: "${
      readFileSync(join(dir, "PG_VERSION"), "utf8").trim()
    }", catalogVersion: ${system?.catalog_version_no}, walSegmentBytes: ${SEGMENT} }`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}

/** The checkpoint's LSN, from pg_control (ControlFileData.checkPoint, little-endian, offset 32). */
function controlCheckpoint(dir: string): bigint {
  const b = readFileSync(join(dir, "global", "pg_control"));
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(32, true);
}

/** XLogFileName(): timeline, then the segment number split at 4 GB. */
function segmentName(timeline: number, lsn: bigint): string {
  const segno = lsn / BigInt(SEGMENT);
  const perId = 0x1_0000_0000n / BigInt(SEGMENT);
  const hex = (n: bigint | number): string => n.toString(16).toUpperCase().padStart(8, "0");
  return `${hex(timeline)}${hex(segno / perId)}${hex(segno % perId)}`;
}

/** A ustar archive of `dir`'s files and directories, sorted, with fixed owners and times. */
function writeTar(dir: string): Uint8Array {
  const paths = (readdirSync(dir, { recursive: true }) as string[])
    .map((p) => relative(dir, join(dir, p)))
    .sort();
  const blocks: Uint8Array[] = [];
  for (const path of paths) {
    const full = join(dir, path);
    const isDir = statSync(full).isDirectory();
    const data = isDir ? new Uint8Array(0) : readFileSync(full);
    if (path.length > 99) throw new Error(`path too long for this writer: ${path}`);
    blocks.push(header(isDir ? `${path}/` : path, data.length, isDir));
    blocks.push(data, new Uint8Array((512 - (data.length % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

function header(name: string, size: number, isDir: boolean): Uint8Array {
  const h = new Uint8Array(512);
  const put = (at: number, text: string): void => h.set(new TextEncoder().encode(text), at);
  const octal = (n: number, width: number): string => `${n.toString(8).padStart(width - 1, "0")}\0`;
  put(0, name);
  put(100, octal(isDir ? 0o700 : 0o600, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  put(124, octal(size, 12));
  put(136, octal(0, 12));
  put(148, "        "); // the checksum counts itself as spaces
  put(156, isDir ? "5" : "0");
  put(257, "ustar\x0000");
  const sum = h.reduce((n, b) => n + b, 0);
  put(148, `${sum.toString(8).padStart(6, "0")}\0 `);
  return h;
}
