// Reads an OTLP ExportTraceServiceRequest in protobuf, the fields the tests
// look at only: enough to check what the gateway exports, as a collector
// would receive it.
export type AnyValue = { stringValue?: string; intValue?: number; boolValue?: boolean; doubleValue?: number; arrayValue?: { values: AnyValue[] } };
export interface DecodedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: AnyValue }>;
  status?: { code?: number; message?: string };
}

type Field = { no: number; wire: number; value: number | Buffer };

function* fields(buf: Buffer): Generator<Field> {
  let at = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = buf[at++]!;
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
      shift += 7;
    }
  };
  while (at < buf.length) {
    const tag = varint();
    const no = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) yield { no, wire, value: varint() };
    else if (wire === 1) {
      yield { no, wire, value: buf.subarray(at, at + 8) };
      at += 8;
    } else if (wire === 2) {
      const len = varint();
      yield { no, wire, value: buf.subarray(at, at + len) };
      at += len;
    } else if (wire === 5) {
      yield { no, wire, value: buf.subarray(at, at + 4) };
      at += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}

const bytes = (f: Field) => f.value as Buffer;

function anyValue(buf: Buffer): AnyValue {
  for (const f of fields(buf)) {
    if (f.no === 1) return { stringValue: bytes(f).toString('utf8') };
    if (f.no === 2) return { boolValue: f.value === 1 };
    if (f.no === 3) return { intValue: f.value as number };
    if (f.no === 4) return { doubleValue: bytes(f).readDoubleLE(0) };
    if (f.no === 5) return { arrayValue: { values: [...fields(bytes(f))].filter((v) => v.no === 1).map((v) => anyValue(bytes(v))) } };
  }
  return {};
}

function span(buf: Buffer): DecodedSpan {
  const out: DecodedSpan = { traceId: '', spanId: '', name: '', kind: 0, attributes: [] };
  for (const f of fields(buf)) {
    if (f.no === 1) out.traceId = bytes(f).toString('hex');
    else if (f.no === 2) out.spanId = bytes(f).toString('hex');
    else if (f.no === 4 && bytes(f).length > 0) out.parentSpanId = bytes(f).toString('hex');
    else if (f.no === 5) out.name = bytes(f).toString('utf8');
    else if (f.no === 6) out.kind = f.value as number;
    else if (f.no === 9) {
      let key = '';
      let value: AnyValue = {};
      for (const kv of fields(bytes(f))) {
        if (kv.no === 1) key = bytes(kv).toString('utf8');
        else if (kv.no === 2) value = anyValue(bytes(kv));
      }
      out.attributes.push({ key, value });
    } else if (f.no === 15) {
      out.status = {};
      for (const s of fields(bytes(f))) {
        if (s.no === 2) out.status.message = bytes(s).toString('utf8');
        else if (s.no === 3) out.status.code = s.value as number;
      }
    }
  }
  return out;
}

export function decodeTraceRequest(buf: Buffer): DecodedSpan[] {
  const spans: DecodedSpan[] = [];
  for (const rs of fields(buf)) {
    if (rs.no !== 1) continue;
    for (const ss of fields(bytes(rs))) {
      if (ss.no !== 2) continue;
      for (const s of fields(bytes(ss))) if (s.no === 2) spans.push(span(bytes(s)));
    }
  }
  return spans;
}
