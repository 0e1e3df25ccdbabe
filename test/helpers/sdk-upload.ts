// Uploads an oversized chat request with the official `openai` SDK, in a
// process of its own: `node --import tsx sdk-upload.ts <baseURL> <key> <tries> <bytes>`.
// In the test's own process the client and the gateway share one event loop,
// so the client always reads the answer before it writes again and never
// meets the reset a real, separate client does. Prints one JSON array of
// outcomes on stdout.
import OpenAI from 'openai';

export type UploadOutcome = { status: number; code: string | null | undefined; message: string } | { connectionError: string } | { ok: true };

const [baseURL, apiKey, tries, bytes] = process.argv.slice(2);
const client = new OpenAI({ apiKey, baseURL, maxRetries: 0 });
const content = 'x'.repeat(Number(bytes));
const outcomes: UploadOutcome[] = [];
for (let i = 0; i < Number(tries); i++) {
  try {
    await client.chat.completions.create({ model: 'gpt-fake', messages: [{ role: 'user', content }] });
    outcomes.push({ ok: true });
  } catch (err) {
    if (err instanceof OpenAI.APIConnectionError) {
      const cause = err.cause as { code?: string; cause?: { code?: string } } | undefined;
      outcomes.push({ connectionError: cause?.code ?? cause?.cause?.code ?? err.message });
    } else if (err instanceof OpenAI.APIError) outcomes.push({ status: err.status ?? 0, code: err.code, message: err.message });
    else throw err;
  }
}
process.stdout.write(JSON.stringify(outcomes));
