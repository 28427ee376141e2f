/** Herald's version, sent in the User-Agent and printed by `--version`. */
export const VERSION = "0.1.0";
