// The one form in which tool names are compared: catalogue, lane lists,
// offered tools and the calls a model makes. A model (or an app) that writes
// `Run-Shell`, `RUN_SHELL`, `ｒｕｎ＿ｓｈｅｌｌ` or `run\u200b_shell` names the
// same tool as `run_shell`, so a rule about one is a rule about all of them.
// Config names get their key once at load; calls get it once each.

/** A tool name in its canonical form. Only toolKey makes one. */
export type ToolKey = string & { readonly __toolKey: unique symbol };

const CANONICAL = /^[a-z0-9_]*$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const ASCII_SEPARATORS = /[-. ]/g;
// Dashes, connectors (`_` and its look-alikes), dots and any white space.
const SEPARATORS = /[\p{Pd}\p{Pc}\p{White_Space}.]/gu;
// Zero-width and other format characters, controls and what Unicode says to
// ignore when rendering: invisible, so a name must not differ by them.
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Cf}\p{Cc}]/gu;

/**
 * NFKC, case folded, `-` `_` `.` and spaces alike, invisible characters
 * removed. Plain ASCII names (nearly all of them) take a fast path.
 */
export function toolKey(name: string): ToolKey {
  if (CANONICAL.test(name)) return name as ToolKey;
  if (PRINTABLE_ASCII.test(name)) return name.toLowerCase().replace(ASCII_SEPARATORS, '_') as ToolKey;
  // Separators first: tab and line breaks are controls too, but count as spaces.
  const plain = name.normalize('NFKC').replace(SEPARATORS, '_').replace(INVISIBLE, '');
  // Upper then lower case folds what lower case alone leaves apart (ß and ss);
  // NFKC again because case mapping can leave a string unnormalised.
  return plain.toUpperCase().toLowerCase().normalize('NFKC') as ToolKey;
}

/** What a reviewer needs to know about the comparison, for error messages. */
export const TOOL_NAME_RULE = 'tool names are compared ignoring case, width, invisible characters and the difference between "-", "_", "." and spaces';
