/**
 * Hostile input, schema names: each is refused before any SQL, and no such schema is created.
 *
 * @module
 */
/** [name, schema name, a known bug (reported, not enforced)] */
export type SchemaCase = [name: string, schema: unknown, todo?: string];

/** Bad schema names. */
export const SCHEMAS: readonly SchemaCase[] = [
  ["quote and DROP", 'herald"; DROP SCHEMA public CASCADE; --'],
  ["single quote", "herald'--"],
  ["upper-case", "Herald"],
  ["leading digit", "1herald"],
  ["empty", ""],
  ["64 characters", "s".repeat(64)],
  ["dotted", "herald.notifications"],
  ["trailing space", "herald "],
  ["NUL", "herald\u0000x"],
  ["non-ASCII", "héràld"],
  ["semicolon", "herald;"],
  ["already quoted", '"herald"'],
  ["a number", 42],
  [
    "a system schema (pg_catalog)",
    "pg_catalog",
  ],
];
