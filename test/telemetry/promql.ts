// A PromQL parser for the dashboards' queries: enough of the language
// (selectors, ranges and subqueries, functions, aggregations, binary
// operators with their modifiers) to reject a query Prometheus would reject
// for its syntax or a misspelt function, and to list the metrics a query
// reads. Grafana's built-in interval variables ($__range, $__rate_interval,
// ...) stand where a duration may; template variables ($team) only inside
// label matcher strings, where Grafana substitutes them.

export type Node =
  | { type: 'number'; value: number }
  | { type: 'string'; value: string }
  | { type: 'selector'; name: string | undefined; matchers: Matcher[]; range: string | undefined; offset: string | undefined }
  | { type: 'subquery'; expr: Node; range: string; step: string | undefined }
  | { type: 'call'; func: string; args: Node[] }
  | { type: 'aggregation'; op: string; param: Node | undefined; expr: Node; grouping: { without: boolean; labels: string[] } | undefined }
  | { type: 'binary'; op: string; lhs: Node; rhs: Node; matching: { on: boolean; labels: string[] } | undefined }
  | { type: 'unary'; op: string; expr: Node }
  | { type: 'paren'; expr: Node };

export interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

type TokenKind = 'number' | 'duration' | 'string' | 'ident' | 'op' | 'punct' | 'eof';
interface Token {
  kind: TokenKind;
  text: string;
  pos: number;
}

const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);
const PARAM_AGGREGATIONS = new Set(['count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);
/** Functions whose (first) argument must be a range vector. */
const RANGE_FUNCTIONS = new Set([
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'changes', 'resets', 'predict_linear', 'holt_winters', 'double_exponential_smoothing',
  'avg_over_time', 'min_over_time', 'max_over_time', 'sum_over_time', 'count_over_time', 'quantile_over_time', 'stddev_over_time',
  'stdvar_over_time', 'last_over_time', 'present_over_time', 'absent_over_time', 'mad_over_time',
]);
const FUNCTIONS = new Set([
  ...RANGE_FUNCTIONS,
  'abs', 'absent', 'acos', 'acosh', 'asin', 'asinh', 'atan', 'atanh', 'ceil', 'clamp', 'clamp_max', 'clamp_min', 'cos', 'cosh', 'day_of_month',
  'day_of_week', 'day_of_year', 'days_in_month', 'deg', 'exp', 'floor', 'histogram_avg', 'histogram_count', 'histogram_fraction',
  'histogram_quantile', 'histogram_stddev', 'histogram_stdvar', 'histogram_sum', 'hour', 'label_join', 'label_replace', 'ln', 'log10', 'log2',
  'minute', 'month', 'pi', 'rad', 'round', 'scalar', 'sgn', 'sin', 'sinh', 'sort', 'sort_by_label', 'sort_by_label_desc', 'sort_desc', 'sqrt',
  'tan', 'tanh', 'time', 'timestamp', 'vector', 'year',
]);
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'atan2']);
/** Binary operators, loosest first; ^ binds right. */
const PRECEDENCE: string[][] = [['or'], ['and', 'unless'], ['==', '!=', '<=', '<', '>=', '>'], ['+', '-'], ['*', '/', '%', 'atan2'], ['^']];
const COMPARISONS = new Set(['==', '!=', '<=', '<', '>=', '>']);

const DURATION = /^(?:\d+(?:ms|[smhdwy]))+|^\$__(?:range|rate_interval|interval)(?:_ms|_s)?\b/;
const NUMBER = /^(?:0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf\b|NaN\b)/;
const IDENT = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const OPS = ['==', '!=', '=~', '!~', '<=', '>=', '<', '>', '=', '+', '-', '*', '/', '%', '^', '@'];

export function tokenize(query: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < query.length) {
    const rest = query.slice(i);
    const ws = /^(?:\s+|#[^\n]*)/.exec(rest);
    if (ws) {
      i += ws[0].length;
      continue;
    }
    const c = rest[0]!;
    if (c === '"' || c === "'" || c === '`') {
      let j = 1;
      let value = '';
      while (j < rest.length && rest[j] !== c) {
        if (rest[j] === '\\' && c !== '`') {
          j++;
          if (j >= rest.length) break;
          value += rest[j] === 'n' ? '\n' : rest[j];
        } else value += rest[j];
        j++;
      }
      if (j >= rest.length) throw new SyntaxError(`unterminated string at ${i}: ${query}`);
      tokens.push({ kind: 'string', text: value, pos: i });
      i += j + 1;
      continue;
    }
    const duration = DURATION.exec(rest);
    if (duration) {
      tokens.push({ kind: 'duration', text: duration[0], pos: i });
      i += duration[0].length;
      continue;
    }
    const number = NUMBER.exec(rest);
    if (number) {
      tokens.push({ kind: 'number', text: number[0], pos: i });
      i += number[0].length;
      continue;
    }
    // A leading ':' would read as a (recording-rule style) name; here it is always a subquery's step separator.
    const ident = c === ':' ? null : IDENT.exec(rest);
    if (ident) {
      tokens.push({ kind: 'ident', text: ident[0], pos: i });
      i += ident[0].length;
      continue;
    }
    const op = OPS.find((o) => rest.startsWith(o));
    if (op) {
      tokens.push({ kind: 'op', text: op, pos: i });
      i += op.length;
      continue;
    }
    if ('(){}[],:'.includes(c)) {
      tokens.push({ kind: 'punct', text: c, pos: i });
      i++;
      continue;
    }
    throw new SyntaxError(`unexpected character ${JSON.stringify(c)} at ${i}: ${query}`);
  }
  tokens.push({ kind: 'eof', text: '', pos: query.length });
  return tokens;
}

export function parsePromQL(query: string): Node {
  const tokens = tokenize(query);
  let at = 0;
  const peek = (ahead = 0) => tokens[Math.min(at + ahead, tokens.length - 1)]!;
  const fail = (what: string): never => {
    const t = peek();
    throw new SyntaxError(`${what} at ${t.pos} (found ${t.kind === 'eof' ? 'the end' : JSON.stringify(t.text)}): ${query}`);
  };
  const is = (text: string, kind?: TokenKind) => peek().text === text && (kind === undefined || peek().kind === kind) && peek().kind !== 'string';
  const expect = (text: string) => {
    if (!is(text)) fail(`expected "${text}"`);
    return tokens[at++]!;
  };
  const accept = (text: string) => (is(text) ? tokens[at++] : undefined);

  function labelList(): string[] {
    expect('(');
    const labels: string[] = [];
    while (!is(')')) {
      if (peek().kind !== 'ident') fail('expected a label name');
      labels.push(tokens[at++]!.text);
      if (!accept(',')) break;
    }
    expect(')');
    return labels;
  }

  function duration(): string {
    if (peek().kind !== 'duration') fail('expected a duration');
    return tokens[at++]!.text;
  }

  function binaryOp(level: number): string | undefined {
    const t = peek();
    if (t.kind === 'string' || t.kind === 'eof') return undefined;
    return PRECEDENCE[level]!.includes(t.text) && (t.kind === 'op' || t.kind === 'ident') ? t.text : undefined;
  }

  function expression(level = 0): Node {
    if (level === PRECEDENCE.length) return unary();
    let lhs = expression(level + 1);
    for (let op = binaryOp(level); op; op = binaryOp(level)) {
      at++;
      if (accept('bool') && !COMPARISONS.has(op)) fail('"bool" only after a comparison');
      let matching: { on: boolean; labels: string[] } | undefined;
      if (is('on') || is('ignoring')) {
        const on = tokens[at++]!.text === 'on';
        matching = { on, labels: labelList() };
        if (is('group_left') || is('group_right')) {
          at++;
          if (is('(')) labelList();
        }
      }
      // ^ is right-associative: its right side may hold more of it.
      const rhs = op === '^' ? expression(level) : expression(level + 1);
      lhs = { type: 'binary', op, lhs, rhs, matching };
      if (op === '^') break;
    }
    return lhs;
  }

  function unary(): Node {
    if (is('-', 'op') || is('+', 'op')) {
      const op = tokens[at++]!.text;
      return { type: 'unary', op, expr: unary() };
    }
    return postfix(primary());
  }

  /** `[range:step]` subqueries and `offset` after any expression. */
  function postfix(node: Node): Node {
    let out = node;
    while (is('[') && !(out.type === 'selector' && out.range !== undefined)) {
      at++;
      const range = duration();
      expect(':');
      const step = peek().kind === 'duration' ? duration() : undefined;
      expect(']');
      out = { type: 'subquery', expr: out, range, step };
    }
    if (accept('offset')) {
      if (out.type === 'selector') out.offset = duration();
      else duration();
    }
    return out;
  }

  function matchers(): Matcher[] {
    expect('{');
    const out: Matcher[] = [];
    while (!is('}')) {
      const label = peek();
      if (label.kind !== 'ident') fail('expected a label name');
      at++;
      const op = peek();
      if (op.kind !== 'op' || !['=', '!=', '=~', '!~'].includes(op.text)) fail('expected =, !=, =~ or !~');
      at++;
      const value = peek();
      if (value.kind !== 'string') fail('expected a quoted label value');
      at++;
      out.push({ label: label.text, op: op.text as Matcher['op'], value: value.text });
      if (!accept(',')) break;
    }
    expect('}');
    return out;
  }

  function selector(name: string | undefined): Node {
    const m = is('{') ? matchers() : [];
    if (name === undefined && !m.some((x) => !(x.op === '=~' && /^\.\*$/.test(x.value)) && x.value !== '')) fail('a selector needs a metric name or a non-empty matcher');
    let range: string | undefined;
    if (is('[') && peek(2).text !== ':') {
      at++;
      range = duration();
      expect(']');
    }
    return { type: 'selector', name, matchers: m, range, offset: undefined };
  }

  function args(): Node[] {
    expect('(');
    const out: Node[] = [];
    while (!is(')')) {
      out.push(expression());
      if (!accept(',')) break;
    }
    expect(')');
    return out;
  }

  function primary(): Node {
    const t = peek();
    if (t.kind === 'number') {
      at++;
      return { type: 'number', value: Number(t.text) };
    }
    if (t.kind === 'string') {
      at++;
      return { type: 'string', value: t.text };
    }
    if (is('(')) {
      at++;
      const expr = expression();
      expect(')');
      return { type: 'paren', expr };
    }
    if (is('{')) return selector(undefined);
    if (t.kind !== 'ident') return fail('expected an expression');
    at++;
    if (AGGREGATIONS.has(t.text) && (is('(') || is('by') || is('without'))) {
      let grouping: { without: boolean; labels: string[] } | undefined;
      if (is('by') || is('without')) grouping = { without: tokens[at++]!.text === 'without', labels: labelList() };
      const list = args();
      if (!grouping && (is('by') || is('without'))) grouping = { without: tokens[at++]!.text === 'without', labels: labelList() };
      const wanted = PARAM_AGGREGATIONS.has(t.text) ? 2 : 1;
      if (list.length !== wanted) fail(`${t.text}() takes ${wanted} argument(s), got ${list.length}`);
      return { type: 'aggregation', op: t.text, param: wanted === 2 ? list[0] : undefined, expr: list.at(-1)!, grouping };
    }
    if (is('(')) {
      if (!FUNCTIONS.has(t.text)) fail(`unknown function "${t.text}"`);
      const list = args();
      const first = list[0];
      const isRange = (n: Node | undefined) => (n?.type === 'selector' && n.range !== undefined) || n?.type === 'subquery';
      if (RANGE_FUNCTIONS.has(t.text) && !isRange(t.text === 'quantile_over_time' || t.text === 'predict_linear' ? (t.text === 'predict_linear' ? first : list[1]) : first)) {
        fail(`${t.text}() needs a range vector (selector[duration])`);
      }
      return { type: 'call', func: t.text, args: list };
    }
    if (KEYWORDS.has(t.text)) {
      at--;
      return fail('expected an expression');
    }
    return selector(t.text);
  }

  const node = expression();
  if (peek().kind !== 'eof') fail('unexpected input after the expression');
  return node;
}

/** Every node of the tree, depth first. */
export function* walk(node: Node): Generator<Node> {
  yield node;
  switch (node.type) {
    case 'subquery':
    case 'unary':
    case 'paren':
      yield* walk(node.expr);
      break;
    case 'call':
      for (const a of node.args) yield* walk(a);
      break;
    case 'aggregation':
      if (node.param) yield* walk(node.param);
      yield* walk(node.expr);
      break;
    case 'binary':
      yield* walk(node.lhs);
      yield* walk(node.rhs);
      break;
    default:
  }
}

export function selectors(node: Node): Array<Extract<Node, { type: 'selector' }>> {
  return [...walk(node)].filter((n): n is Extract<Node, { type: 'selector' }> => n.type === 'selector');
}

/**
 * Grafana's Prometheus variable queries: `label_values(selector, label)`,
 * `label_values(label)`, `label_names()`, `metrics(regex)`,
 * `query_result(promql)`. Returns the PromQL inside, if any.
 */
export function parseVariableQuery(query: string): Node | undefined {
  const m = /^\s*(label_values|label_names|metrics|query_result)\s*\(([\s\S]*)\)\s*$/.exec(query);
  if (!m) throw new SyntaxError(`not a Grafana Prometheus variable query: ${query}`);
  const inner = m[2]!.trim();
  if (m[1] === 'query_result') return parsePromQL(inner);
  if (m[1] !== 'label_values') return undefined;
  const comma = inner.lastIndexOf(',');
  if (comma < 0) return undefined;
  const label = inner.slice(comma + 1).trim();
  if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(label)) throw new SyntaxError(`label_values: bad label name "${label}": ${query}`);
  return parsePromQL(inner.slice(0, comma));
}
