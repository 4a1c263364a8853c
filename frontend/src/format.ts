export const money = (cents: number, currency = 'usd') =>
  new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase() }).format(cents / 100);

/** The per-credit price the guide prints: $0.100/credit. */
export const perCredit = (cents: number, credits: number) => `$${(cents / 100 / credits).toFixed(3)}/credit`;

export const when = (iso?: string) => (iso ? new Date(iso).toLocaleString() : '—');

export const timeZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
