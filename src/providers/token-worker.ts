// The counting worker's task (run by the piscina pool in tokens.ts). A count
// that throws is answered, not thrown: a rejected task then always means the
// worker itself failed, which tokens.ts counts towards giving up on workers.
import { get_encoding } from 'tiktoken';
import { countUpTo, ENCODING } from './token-count.js';

export interface CountTask {
  texts: string[];
  limit: number;
}

export type CountAnswer = { tokens: number } | { error: string };

const encoder = get_encoding(ENCODING);

export default function count({ texts, limit }: CountTask): CountAnswer {
  try {
    return { tokens: countUpTo(encoder, texts, limit) };
  } catch (err) {
    return { error: String(err) };
  }
}
