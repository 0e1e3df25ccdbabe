import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  BUILTIN_DETECTOR_NAMES,
  BUILTIN_DETECTORS,
  createRegexDetector,
  ibanValid,
  luhnValid,
  RegexDetectorError,
  type BuiltinDetectorName,
  type Detector,
  type Finding,
} from '../../src/policy/detectors.js';

function scan(detector: Detector, text: string): Finding[] {
  const out: Finding[] = [];
  detector.scan(text, out);
  return out;
}

/** The substrings a built-in reports, in order. */
function found(name: BuiltinDetectorName, text: string): string[] {
  return scan(BUILTIN_DETECTORS[name], text).map((f) => text.slice(f.start, f.end));
}

/** Asserts `name` reports exactly `values`, each at its first occurrence in `text`. */
function assertSpans(name: BuiltinDetectorName, text: string, values: string[]): void {
  let from = 0;
  const expected = values.map((value) => {
    const start = text.indexOf(value, from);
    assert.ok(start >= 0, `${value} is in the text`);
    from = start + value.length;
    return { detector: name, start, end: start + value.length };
  });
  assert.deepEqual(scan(BUILTIN_DETECTORS[name], text), expected);
}

// Keys are assembled at run time so the repository holds no string a secret scanner would flag.
const key = (...parts: string[]): string => parts.join('');
const ALNUM36 = 'R8xK2mPq9vLw3nTz7yHb4cJd6fGs1aUe5iOk';

/** An IBAN with correct check digits for `country` and `bban`, for lengths the registry does not allow. */
function withCheckDigits(country: string, bban: string): string {
  const digits = [...`${bban}${country}00`].map((c) => (c >= 'A' ? String(c.charCodeAt(0) - 55) : c)).join('');
  const check = 98n - (BigInt(digits) % 97n);
  return `${country}${String(check).padStart(2, '0')}${bban}`;
}

describe('detectors – email', () => {
  it('email – reports whole addresses with exact spans, several per text', () => {
    assertSpans('email', 'Write to jane.doe+news@mail.example.co.uk or ops_team@corp-x.io.', ['jane.doe+news@mail.example.co.uk', 'ops_team@corp-x.io']);
  });

  it('email – unicode around an address keeps UTF-16 offsets', () => {
    assertSpans('email', '📧 Écrivez à «jean.dupont@exemple.fr» — merci 🙏', ['jean.dupont@exemple.fr']);
  });

  it('email – rejects hosts without a dot, numeric TLDs and missing local parts', () => {
    for (const text of ['root@localhost', 'a@b', '@example.com', 'name@ example.com', 'ratio 5@3.00', 'x@-.-']) {
      assert.deepEqual(found('email', text), [], text);
    }
  });

  it('email – a local part is at most 64 chars and leading dots are not part of it', () => {
    assert.deepEqual(found('email', `${'x'.repeat(70)}@example.com`), [`${'x'.repeat(64)}@example.com`]);
    assert.deepEqual(found('email', 'see...bob@example.com.'), ['bob@example.com']);
  });
});

describe('detectors – phone', () => {
  it('phone – international and national formats', () => {
    assertSpans('phone', 'Call +44 20 7946 0958, (415) 555-2671 or 415.555.2671.', ['+44 20 7946 0958', '(415) 555-2671', '415.555.2671']);
    assertSpans('phone', 'US +1 (415) 555-2671; UK +44 (0)20 7946 0958; London 020 7946 0958; 415-555-2671', [
      '+1 (415) 555-2671',
      '+44 (0)20 7946 0958',
      '020 7946 0958',
      '415-555-2671',
    ]);
  });

  it('phone – unicode around a number', () => {
    assertSpans('phone', '電話番号：+81 3-1234-5678です 🙂', ['+81 3-1234-5678']);
  });

  it('phone – ignores years, small numbers, dates, IPs, decimals, timestamps and cards', () => {
    const texts = [
      'in 2024 we shipped 12345 units',
      'due 2024-01-15, signed 15.01.2024',
      'host 192.168.100.200',
      'pi is 3.14159265358',
      'from 2019 2020 2021',
      'epoch 1700000000 and id 123456789012',
      'card 4111 1111 1111 1111 and 4111111111111111',
      'amex 378282246310005',
      'token xoxb-1234567890-abcdef',
      'order A12345678901',
    ];
    for (const text of texts) assert.deepEqual(found('phone', text), [], text);
  });
});

describe('detectors – card', () => {
  it('card – Luhn-valid numbers, grouped or not, spans include separators', () => {
    assertSpans('card', 'Visa 4111 1111 1111 1111, MC 5500-0000-0000-0004, plain 4111111111111111, Amex 3782 822463 10005.', [
      '4111 1111 1111 1111',
      '5500-0000-0000-0004',
      '4111111111111111',
      '3782 822463 10005',
    ]);
  });

  it('card – an expiry or CVC after the number is not part of it', () => {
    assertSpans('card', 'card 4111-1111-1111-1111 12/27 cvc 123', ['4111-1111-1111-1111']);
    assertSpans('card', 'card 4111 1111 1111 1111 123', ['4111 1111 1111 1111']);
  });

  it('card – unicode around a number', () => {
    assertSpans('card', 'カード：4111-1111-1111-1111。ありがとう', ['4111-1111-1111-1111']);
  });

  it('card – rejects a wrong checksum, other IIN digits, mixed separators and glued digits', () => {
    const texts = [
      '4111 1111 1111 1112',
      '5500-0000-0000-0005',
      '7111 1111 1111 1114', // Luhn-valid, but no card network starts with 7
      '4111 1111-1111 1111',
      'ref X4111111111111111',
      '4111111111111111999', // 19 digits, wrong checksum
      '41 11 11 11 11 11 11 11',
    ];
    for (const text of texts) assert.deepEqual(found('card', text), [], text);
  });

  it('luhnValid – checks digit strings only', () => {
    assert.equal(luhnValid('4111111111111111'), true);
    assert.equal(luhnValid('5500000000000004'), true);
    assert.equal(luhnValid('4111111111111112'), false);
    assert.equal(luhnValid('4111 1111 1111 1111'), false);
    assert.equal(luhnValid(''), false);
  });
});

describe('detectors – iban', () => {
  it('iban – grouped and compact, any case, exact spans', () => {
    assertSpans('iban', 'Pay GB82 WEST 1234 5698 7654 32 or DE89370400440532013000; also de89 3704 0044 0532 0130 00.', [
      'GB82 WEST 1234 5698 7654 32',
      'DE89370400440532013000',
      'de89 3704 0044 0532 0130 00',
    ]);
  });

  it('iban – unicode around an IBAN', () => {
    assertSpans('iban', 'Überweisung → IBAN：DE89 3704 0044 0532 0130 00 ✅', ['DE89 3704 0044 0532 0130 00']);
  });

  it('iban – rejects wrong check digits, glued text and lengths the registry forbids', () => {
    const tooLong = withCheckDigits('GB', 'WEST123456987654321');
    assert.equal(ibanValid(tooLong), true, 'mod-97 alone accepts it');
    for (const text of ['GB83 WEST 1234 5698 7654 32', 'DE89370400440532013001', 'xDE89370400440532013000', tooLong, 'GB82 WEST']) {
      assert.deepEqual(found('iban', text), [], text);
    }
  });

  it('iban – a country missing from the registry falls back to 15-34 chars', () => {
    const iban = withCheckDigits('ZZ', 'ABCD12345678901');
    assert.deepEqual(found('iban', `send to ${iban} now`), [iban]);
  });

  it('ibanValid – mod-97 on the compact uppercase form', () => {
    assert.equal(ibanValid('GB82WEST12345698765432'), true);
    assert.equal(ibanValid('gb82 west 1234 5698 7654 32'), true);
    assert.equal(ibanValid('DE89370400440532013000'), true);
    assert.equal(ibanValid('DE88370400440532013000'), false);
    assert.equal(ibanValid('DE89'), false);
  });
});

describe('detectors – api_key', () => {
  const keys = {
    openai: key('sk-', 'proj-', 'T3BlbkFJ', ALNUM36, '_x-9Q'),
    openaiLegacy: key('sk-', ALNUM36, 'AbCd1234EfGh'),
    anthropic: key('sk-', 'ant-', 'api03-', ALNUM36, '-AbC9_dEf'),
    aws: key('AKIA', 'IOSFODNN7EXAMPLE'),
    awsSession: key('ASIA', 'Y34FZKBOKMUTVV7A'),
    github: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'].map((prefix) => key(prefix, ALNUM36)),
    githubFineGrained: key('github_', 'pat_', '11ABCDEFG0', 'abcdefghij12', '_', ALNUM36),
    slack: key('xo', 'xb-', '123456789012-1234567890123-', 'AbCdEfGhIjKlMnOpQrStUvWx'),
    google: key('AI', 'za', 'SyD-9tSrke72PouQMnMX', '-a7eZSW0jkFMBWY'),
    gitlab: key('gl', 'pat-', 'xH3kR9mW2pL7qN4vB8sZ'),
    stripe: ['sk', 'rk', 'pk'].map((kind) => key(kind, '_live_', '4eC39HqLyjWDarjtT1zdp7dc')),
    jwt: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
  };

  it('api_key – each known format is reported whole', () => {
    const all = [
      keys.openai,
      keys.openaiLegacy,
      keys.anthropic,
      keys.aws,
      keys.awsSession,
      ...keys.github,
      keys.githubFineGrained,
      keys.slack,
      keys.google,
      keys.gitlab,
      ...keys.stripe,
      keys.jwt,
    ];
    for (const k of all) assertSpans('api_key', `key: "${k}", done`, [k]);
    assertSpans('api_key', all.join('\n'), all);
  });

  it('api_key – Bearer reports the token, not the scheme', () => {
    const token = 'mF_9.B5f-4.1JqM7xYz0aBcDeFgHi';
    assertSpans('api_key', `Authorization: Bearer ${token}\r\n`, [token]);
    assertSpans('api_key', `authorization: bearer ${keys.jwt}`, [keys.jwt]);
  });

  it('api_key – unicode around a key', () => {
    assertSpans('api_key', `🔑 clé « ${keys.openai} » ✔`, [keys.openai]);
  });

  it('api_key – rejects words, short bodies and prefixes glued to words', () => {
    const texts = [
      'a task-management-system-design-document for risk-assessment-frameworks',
      'sk-short',
      key('AKIA', 'IOSFODNN7EXAMPL'), // 15 chars
      key('AKIA', 'IOSFODNN7EXAMPLE1'), // 17 chars
      key('ghp_', ALNUM36.slice(1)),
      key('my', 'sk-', ALNUM36),
      key('x', 'AKIA', 'IOSFODNN7EXAMPLE'),
      'Bearer token',
      'Bearer authentication-is-described-here',
      'eyJhbGciOiJIUzI1NiJ9 alone',
    ];
    for (const text of texts) assert.deepEqual(found('api_key', text), [], text);
  });
});

describe('detectors – private_key', () => {
  const pkcs1 = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString().trim();
  const pkcs8 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString().trim();
  const openssh = ['-----BEGIN OPENSSH PRIVATE KEY-----', 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW', 'QyNTUxOQAAACCz1l9cxSyqJWp1H7Q9K5x3Ycx6UeFJm3oUJ1v3FZ2RxQAAAJgN7Cl7DewX', '-----END OPENSSH PRIVATE KEY-----'].join('\n');

  it('private_key – reports whole PEM blocks', () => {
    assert.match(pkcs1, /^-----BEGIN RSA PRIVATE KEY-----/);
    assertSpans('private_key', `here:\n${pkcs1}\nand ${pkcs8}\nand ${openssh}\n— fin 🔐`, [pkcs1, pkcs8, openssh]);
  });

  it('private_key – without an END, reports up to 16 KB from the BEGIN', () => {
    const text = `x ${pkcs1.slice(0, 200)}`;
    assertSpans('private_key', text, [text.slice(2)]);
    const long = `x -----BEGIN PRIVATE KEY-----\n${'A'.repeat(40_000)}`;
    assert.deepEqual(scan(BUILTIN_DETECTORS.private_key, long), [{ detector: 'private_key', start: 2, end: 2 + 16 * 1024 }]);
  });

  it('private_key – ignores public keys and certificates', () => {
    const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.deepEqual(found('private_key', `${spki}\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----`), []);
  });
});

describe('detectors – all built-ins', () => {
  it('built-ins – findings come in increasing start order and never overlap', () => {
    const text = [
      'Mail jane@example.com, a@b.io and c@d.org; call +44 20 7946 0958 or 415-555-2671.',
      'Cards 4111 1111 1111 1111 / 5500-0000-0000-0004. IBANs GB82 WEST 1234 5698 7654 32, DE89370400440532013000.',
      `Keys ${key('sk-', 'proj-', ALNUM36)} ${key('AKIA', 'IOSFODNN7EXAMPLE')} Bearer abcDEF123456ghijKLMN7890.`,
      '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY----- -----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----',
    ].join('\n');
    for (const name of BUILTIN_DETECTOR_NAMES) {
      const findings = scan(BUILTIN_DETECTORS[name], text);
      assert.ok(findings.length >= 2, `${name} finds several`);
      for (const [i, f] of findings.entries()) {
        assert.equal(f.detector, name);
        assert.ok(f.start < f.end, `${name} finding ${i} is not empty`);
        const previous = findings[i - 1];
        if (previous) assert.ok(previous.end <= f.start, `${name} findings ${i - 1} and ${i} are ordered and disjoint`);
      }
    }
  });

  it('built-ins – empty text and text with nothing to find', () => {
    for (const name of BUILTIN_DETECTOR_NAMES) {
      assert.deepEqual(found(name, ''), [], name);
      assert.deepEqual(found(name, 'Please summarise the attached notes in three bullet points. Thanks!'), [], name);
    }
  });
});

describe('detectors – custom regex', () => {
  it('custom – reports each match with the detector name', () => {
    const d = createRegexDetector('employee_id', 'EMP-[0-9]{6}');
    const text = 'ids EMP-123456, EMP-654321 and EMP-12 — ✓ EMP-000001';
    assert.deepEqual(
      scan(d, text).map((f) => [f.detector, text.slice(f.start, f.end)]),
      [
        ['employee_id', 'EMP-123456'],
        ['employee_id', 'EMP-654321'],
        ['employee_id', 'EMP-000001'],
      ],
    );
  });

  it('custom – flag i matches any case, in classes and negated classes too', () => {
    const d = createRegexDetector('codename', 'project (alpha|beta) [a-c][^x]', 'i');
    const text = 'PROJECT Alpha Bz, project beta c1, Project BETA aX';
    assert.deepEqual(
      scan(d, text).map((f) => text.slice(f.start, f.end)),
      ['PROJECT Alpha Bz', 'project beta c1'],
    );
    const dashes = createRegexDetector('dashes', '[-a]+z', 'i');
    assert.deepEqual(scan(dashes, 'A-Az').map((f) => f.end - f.start), [4]);
  });

  it('custom – flags m and s', () => {
    const lines = createRegexDetector('line', '^SECRET [0-9]+$', 'm');
    const text = 'a\nSECRET 42\nb SECRET 7\nSECRET 9';
    assert.deepEqual(scan(lines, text).map((f) => text.slice(f.start, f.end)), ['SECRET 42', 'SECRET 9']);
    const block = createRegexDetector('block', 'BEGIN.+END', 's');
    assert.deepEqual(scan(block, 'x BEGIN\nmiddle\nEND y').map((f) => [f.start, f.end]), [[2, 18]]);
  });

  it('custom – flag u works or is refused with the reason', () => {
    try {
      const d = createRegexDetector('letters', 'x\\p{Lu}+', 'u');
      assert.deepEqual(scan(d, 'a xÉCOLE b').map((f) => [f.start, f.end]), [[2, 8]]);
    } catch (err) {
      assert.ok(err instanceof RegexDetectorError);
      assert.match(err.message, /flag "u" is not supported by the linear-time regexp engine/);
    }
  });

  it('custom – matches across window edges of a long text are the same as a plain scan', () => {
    const pattern = '\\bEMP-[0-9]{3,6}\\b';
    // Matches of every length at every offset mod the window size, some glued to a word so \b must see the context.
    let text = '';
    for (let i = 0; text.length < 20_000; i++) text += `${'lorem ipsum '.slice(0, i % 13)}${i % 5 === 0 ? '' : ' '}EMP-${10 ** (2 + (i % 4)) + i}${i % 7 === 0 ? 'x' : ' '}`;
    const expected = [...text.matchAll(new RegExp(pattern, 'g'))].map((m) => ({ detector: 'emp', start: m.index, end: m.index + m[0].length }));
    assert.ok(expected.length > 500);
    assert.deepEqual(scan(createRegexDetector('emp', pattern), text), expected);

    const lineStarts = createRegexDetector('starts', '^[0-9]+', 'm');
    const lines = Array.from({ length: 3000 }, (_, i) => `${i} item`).join('\n');
    assert.equal(scan(lineStarts, lines).length, 3000);
    assert.equal(scan(createRegexDetector('first', '^[0-9]+'), lines).length, 1);
  });

  it('custom – alternatives and optional or repeated first chars still find every match', () => {
    const text = 'MP, EMP-1, x-2, EEMP-3, EMP-, #7';
    const cases: Array<[string, string[]]> = [
      ['EMP-1|x-2', ['EMP-1', 'x-2']],
      ['E?MP-[0-9]', ['EMP-1', 'EMP-3']],
      ['E+MP-[0-9]', ['EMP-1', 'EEMP-3']],
      ['(?:EMP|x)-[0-9]', ['EMP-1', 'x-2', 'EMP-3']],
      ['\\#[0-9]', ['#7']],
    ];
    for (const [pattern, expected] of cases) {
      assert.deepEqual(scan(createRegexDetector('c', pattern), text).map((f) => text.slice(f.start, f.end)), expected, pattern);
    }
  });

  it('custom – zero-length matches are skipped, not looped on', () => {
    assert.deepEqual(scan(createRegexDetector('edges', '\\b'), 'two words'), []);
  });

  it('custom – refuses non-linear, invalid and empty-matching patterns and unknown flags, saying why', () => {
    const refused: Array<[string, string, RegExp]> = [
      ['(a)\\1', '', /linear time.*no backreferences or lookaround/],
      ['(?<x>a)\\k<x>', '', /linear time/],
      ['(?=a)b', '', /linear time/],
      ['(?<!a)b', '', /linear time/],
      ['[a-z]{1,64}@', '', /counted repeat above 16/],
      ['[', '', /invalid pattern: Unterminated character class/],
      ['a(', '', /invalid pattern/],
      ['a*', '', /matches the empty string/],
      ['a|', '', /matches the empty string/],
      ['a', 'g', /flag "g" is not supported; use only i, m, s and u/],
      ['a', 'y', /flag "y"/],
      ['a', 'ii', /flag "i" is given twice/],
    ];
    for (const [pattern, flags, message] of refused) {
      assert.throws(
        () => createRegexDetector('custom', pattern, flags),
        (err: unknown) => err instanceof RegexDetectorError && message.test(err.message) && err.message.startsWith('detector "custom": '),
        `${pattern} /${flags}`,
      );
    }
  });
});

// Complexity checks, not benchmarks (those live in bench/detectors.ts): twice
// the input must cost about twice the CPU time. A quadratic scanner fails these by
// orders of magnitude, so the bounds leave room for a noisy machine.
describe('detectors – linear time on adversarial input', () => {
  const MB = 1 << 20;
  const fill = (unit: string, size: number): string => unit.repeat(Math.ceil(size / unit.length)).slice(0, size);

  /**
   * The scan's CPU time, ms: the time the process spent working on it, not the time it waited for a core (on a
   * loaded machine the wall clock counted the waits, and a linear scan measured 43 ms then 185 ms).
   */
  function time(detector: Detector, text: string): number {
    const out: Finding[] = [];
    const before = process.cpuUsage();
    detector.scan(text, out);
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1000;
  }

  function assertLinear(detector: Detector, unit: string, size: number, limitMs = 2000): void {
    const small = fill(unit, size);
    const large = fill(unit, 2 * size);
    let label = '';
    // CPU time still varies (caches and clock shared with other processes): measure both sizes
    // in turns and allow one more attempt. A quadratic scan fails every attempt by far.
    for (let attempt = 0; attempt < 2; attempt++) {
      let once = Infinity;
      let twice = Infinity;
      for (let run = 0; run < 3; run++) {
        once = Math.min(once, time(detector, small));
        twice = Math.min(twice, time(detector, large));
      }
      label = `${detector.name} on ${JSON.stringify(unit)}: ${once.toFixed(1)} ms then ${twice.toFixed(1)} ms`;
      if (twice < 3 * once + 50 && twice < limitMs) return;
    }
    assert.fail(`${label}: doubling the input must at most triple the time (+50 ms), and stay under ${limitMs} ms`);
  }

  const worst: Record<BuiltinDetectorName, string[]> = {
    email: ['a', 'a@', 'a@b.', '.@', 'a@a-'],
    phone: ['4', '1 ', '+1 ', '(12) ', '1-', '+44 (0)'],
    card: ['4', '4 ', '4444 ', '4111 ', '4-'],
    iban: ['GB', 'GB82', 'GB82 ', 'GB82 WEST ', 'gb12'],
    api_key: ['sk-', 'eyJ', 'eyJa.', 'Bearer ', 'Bearer a', 'AKIA', 'ghp_', 'xoxb-', 'a-sk-'],
    private_key: ['-----BEGIN ', '-----BEGIN PRIVATE KEY-----', '-----END PRIVATE KEY-----', '-----BEGIN RSA PRIVATE KEY-----\n-----END X-----'],
  };
  for (const name of BUILTIN_DETECTOR_NAMES) {
    it(`${name} – 2 MB of near-matches costs about twice 1 MB`, () => {
      for (const unit of worst[name]) assertLinear(BUILTIN_DETECTORS[name], unit, MB);
    });
  }

  it('custom – catastrophic backtracking patterns run in linear time', () => {
    assertLinear(createRegexDetector('nested', '(a+)+b'), 'a', MB);
    assertLinear(createRegexDetector('email_like', '[a-z0-9.]+@[a-z]+\\.[a-z]+'), 'a', 256 * 1024);
    assertLinear(createRegexDetector('prefixed', 'EMP-[0-9]+x'), 'EMP-1', MB);
  });

  it('custom – many short matches that need long look-ahead stay linear', () => {
    // The engine reads to the end of its input before preferring "x" over
    // "x*y"; without windows each match would cost O(n), so O(n^2) in all.
    assertLinear(createRegexDetector('lookahead', 'x*y|x'), 'x', 16 * 1024);
  });
});
