import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LaneDetector } from '../../src/policy/compile.js';
import { BUILTIN_DETECTORS, createRegexDetector, normalizeText, type BuiltinDetectorName, type Finding } from '../../src/policy/detectors.js';
import { redactSlot, scanSlots, type TextSlot } from '../../src/policy/scan.js';

/** The detectors' view of `text` and the original span behind each normalised char. */
function view(text: string): { text: string; spans: string[] } {
  const v = normalizeText(text);
  const spans: string[] = [];
  for (let i = 0; i < v.text.length; i++) {
    const o = v.toOriginal(i, i + 1);
    spans.push(text.slice(o.start, o.end));
  }
  return { text: v.text, spans };
}

/** The slot's text after scanning with `names` (all redacting) and redacting what they found. */
function redacted(text: string, names: Array<BuiltinDetectorName | LaneDetector['detector']>): string {
  const slot: TextSlot = { param: 'x', text, set: (t) => (slot.text = t) };
  const rules: LaneDetector[] = names.map((n) => ({ detector: typeof n === 'string' ? BUILTIN_DETECTORS[n] : n, action: 'redact' }));
  for (const found of scanSlots([slot], rules)) redactSlot(found.slot, found.findings, new Map(), new Map());
  return slot.text;
}

function found(name: BuiltinDetectorName, text: string): string[] {
  const out: Finding[] = [];
  BUILTIN_DETECTORS[name].scan(text, out);
  return out.map((f) => text.slice(f.start, f.end));
}

describe('normalizeText', () => {
  it('normalizeText – plain ASCII and text it does not change are returned as they are', () => {
    const ascii = normalizeText('Call 415-555-2671 or mail a@b.io.\n\tDone.');
    assert.equal(ascii.identity, true);
    assert.equal(ascii.text, 'Call 415-555-2671 or mail a@b.io.\n\tDone.');
    const kana = normalizeText('こんにちは、世界。été');
    assert.equal(kana.identity, true);
    assert.deepEqual(kana.toOriginal(2, 5), { start: 2, end: 5 });
  });

  it('normalizeText – removes format characters, each remaining char maps to its own original', () => {
    const text = 'sk-\u200bab\u200dc\u00ad1\u2060\ufeff2\u202e3\ufe0f';
    const v = view(text);
    assert.equal(v.text, 'sk-abc123');
    assert.deepEqual(v.spans, ['s', 'k', '-', 'a', 'b', 'c', '1', '2', '3']);
  });

  it('normalizeText – NFKC: full-width forms, ligatures, circled digits, compatibility spaces', () => {
    assert.equal(normalizeText('４１１１－１１１１ ＡＢＣ＠ｅｘａｍｐｌｅ．ｃｏｍ').text, '4111-1111 ABC@example.com');
    assert.equal(normalizeText('ﬁle ① ² ㈠').text, 'file 1 2 (一)');
    assert.equal(normalizeText('a\u00a0b\u202fc\u3000d\u2007e\u1680f').text, 'a b c d e f');
  });

  it('normalizeText – every Unicode decimal digit reads as its ASCII digit; dashes as "-"', () => {
    assert.equal(normalizeText('٤١١١ ۴۱۱۱ ४१११ ๔๑๑๑ ৪১১১ 𝟒𝟏𝟏𝟏 ꧔꧑꧑꧑').text, '4111 4111 4111 4111 4111 4111 4111');
    assert.equal(normalizeText('a\u2010b\u2011c\u2012d\u2013e\u2014f\u2212g\ufe63h').text, 'a-b-c-d-e-f-g-h');
  });

  it('normalizeText – an expansion maps each of its chars to the char it came from', () => {
    const v = view('x ﬃ ㎒ y');
    assert.equal(v.text, 'x ffi MHz y');
    assert.deepEqual(v.spans, ['x', ' ', 'ﬃ', 'ﬃ', 'ﬃ', ' ', '㎒', '㎒', '㎒', ' ', 'y']);
  });

  it('normalizeText – equals NFKC of the whole text, ignorables removed, on mixed scripts and marks', () => {
    // Fixed pseudo-random strings (no Math.random: a failure must reproduce).
    const pool = [...'aé4 \u0301\u0308\u0323\u0327\u0345\u200b\u00ad\ufe0f\u00a0４ｘﬁ①٣\u1100\u1161\u11a8가Å\u212b\u0915\u093c\u0b47\u0b3e\u0f73\u0344😀𝟒\u2013-c.'];
    const ignorable = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/gu;
    let seed = 7;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let t = 0; t < 3000; t++) {
      let s = '';
      for (let k = 1 + next(14); k > 0; k--) s += pool[next(pool.length)];
      const expected = s.replace(ignorable, '').normalize('NFKC').replace(/\u2013/g, '-').replace(/\u00a0/g, ' ').replace(/٣/g, '3');
      assert.equal(normalizeText(s).text, expected, JSON.stringify(s));
    }
  });

  it('normalizeText – a long run of combining marks is normalised in stream-safe clusters of 30', () => {
    const text = `x${'\u0301\u0323'.repeat(5000)}y`;
    const v = normalizeText(text);
    assert.equal(v.text.length, text.length);
    assert.equal(v.text.at(-1), 'y');
    assert.deepEqual(v.toOriginal(v.text.length - 1, v.text.length), { start: text.length - 1, end: text.length });
  });
});

describe('detectors – separators between digit groups', () => {
  it('card – dots and slashes join groups like spaces and dashes, one kind per number', () => {
    assert.deepEqual(found('card', 'pay 4111.1111.1111.1111 or 5500/0000/0000/0004.'), ['4111.1111.1111.1111', '5500/0000/0000/0004']);
    assert.deepEqual(found('card', 'mixed 4111.1111/1111.1111'), []);
  });

  it('iban – dashes, dots and slashes join groups of four, one kind per IBAN', () => {
    assert.deepEqual(found('iban', 'to DE89-3704-0044-0532-0130-00, GB82.WEST.1234.5698.7654.32 or DE89/3704/0044/0532/0130/00.'), [
      'DE89-3704-0044-0532-0130-00',
      'GB82.WEST.1234.5698.7654.32',
      'DE89/3704/0044/0532/0130/00',
    ]);
    assert.deepEqual(found('iban', 'DE89-3704 0044-0532-0130-00'), []);
  });
});

describe('scanSlots – detectors read normalised text, redaction rewrites the original', () => {
  it('scan – a full-width card inside Japanese text is redacted exactly, the text around it kept', () => {
    assert.equal(redacted('カード：４１１１　１１１１　１１１１　１１１１。ありがとう', ['card']), 'カード：[CARD_1]。ありがとう');
  });

  it('scan – zero-width spaces and no-break spaces inside numbers and keys are covered by the redaction', () => {
    const key = `sk-proj-Ab3\u200b${'Xy9'.repeat(8)}`;
    assert.equal(redacted(`card 4111\u200b1111\u200b1111\u200b1111, key ${key}!`, ['card', 'api_key']), 'card [CARD_1], key [API_KEY_1]!');
    assert.equal(redacted('IBAN DE89\u00a03704\u00a00044\u00a00532\u00a00130\u00a000 ok', ['iban']), 'IBAN [IBAN_1] ok');
    assert.equal(redacted('call ٤١٥-٥٥٥-٢٦٧١ today', ['phone']), 'call [PHONE_1] today');
  });

  it('scan – custom patterns read the normalised text too', () => {
    const employee = createRegexDetector('employee_id', 'EMP-[0-9]{6}');
    assert.equal(redacted('ids ＥＭＰ－１２３４５６ and EMP-\u200b654321.', [employee]), 'ids [EMPLOYEE_ID_1] and [EMPLOYEE_ID_2].');
  });

  it('scan – the same value keeps the same placeholder; different spellings of it get their own', () => {
    assert.equal(redacted('a 4111.1111.1111.1111 b 4111.1111.1111.1111 c ４１１１１１１１１１１１１１１１', ['card']), 'a [CARD_1] b [CARD_1] c [CARD_2]');
  });
});

// Complexity checks, as in detectors.test.ts: twice the input must cost about twice the time.
describe('normalizeText – linear time', () => {
  const fill = (unit: string, size: number): string => unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
  /** CPU time, ms, as in detectors.test.ts: a loaded machine's waits for a core do not count. */
  function time(text: string): number {
    const before = process.cpuUsage();
    normalizeText(text);
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1000;
  }
  const worst: Record<string, string> = {
    'zero-width spaces': 'a\u200b',
    'full-width digits': '４',
    'combining marks': 'e\u0301',
    'marks that reorder': '\u0301\u0323',
    'an 18-char expansion': '\ufdfa',
    'astral chars': '😀𝟒',
    'Devanagari clusters': 'क़ि',
  };
  for (const [label, unit] of Object.entries(worst)) {
    // 16 times the input: linear work takes ~16 times as long, quadratic ~256
    // times. The bound sits between, far enough from both that a loaded
    // machine's pauses (GC, other processes) cannot decide it.
    it(`normalizeText – 64 KB then 1 MB of ${label}`, () => {
      const small = fill(unit, 64 * 1024);
      const large = fill(unit, 1024 * 1024);
      time(small); // builds the pages this unit needs
      let label = '';
      for (let attempt = 0; attempt < 2; attempt++) {
        let once = Infinity;
        let twice = Infinity;
        for (let run = 0; run < 3; run++) {
          once = Math.min(once, time(small));
          twice = Math.min(twice, time(large));
        }
        label = `${once.toFixed(1)} ms then ${twice.toFixed(1)} ms`;
        if (twice < 48 * once + 100) return;
      }
      assert.fail(`${label}: 16 times the input must take at most 48 times as long (+100 ms)`);
    });
  }
});
