// The Submit Job payload field: a reference URI (S3/IPFS/HTTPS) or pasted
// JSON, validated before anything is sent.

export type PayloadResult = { ok: true; body: { payload_ref: string } | { payload: unknown } } | { ok: false; error: string };

/** The URI schemes the server accepts for a payload reference. */
export const PAYLOAD_SCHEMES = ['s3', 'ipfs', 'https'];
/** The longest payload URI the server accepts. */
export const PAYLOAD_URI_MAX = 2048;

export function parsePayload(text: string): PayloadResult {
  const s = text.trim();
  if (s === '') return { ok: false, error: 'Enter a reference URI (S3/IPFS) or paste JSON.' };
  if (s.startsWith('{') || s.startsWith('[')) {
    try {
      return { ok: true, body: { payload: JSON.parse(s) } };
    } catch (e) {
      return { ok: false, error: `Not valid JSON: ${(e as Error).message}` };
    }
  }
  if (/\s/.test(s)) return { ok: false, error: 'A reference URI has no spaces.' };
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return { ok: false, error: 'Enter a URI such as s3://bucket/scene.blend or ipfs://…, or paste JSON.' };
  }
  const scheme = u.protocol.replace(/:$/, '');
  if (!PAYLOAD_SCHEMES.includes(scheme)) return { ok: false, error: `Scheme ${scheme}: use s3, ipfs or https.` };
  if (!u.host) return { ok: false, error: 'The URI has no host (bucket).' };
  if (u.username || u.password) return { ok: false, error: 'The URI must not carry credentials.' };
  if (s.length > PAYLOAD_URI_MAX) return { ok: false, error: `The URI is longer than ${PAYLOAD_URI_MAX} characters.` };
  return { ok: true, body: { payload_ref: s } };
}
