// Chain settings for the in-app proof check, kept in this browser: a
// JSON-RPC URL and contract of the creator's choosing override what the
// server publishes.

const RPC_KEY = 'rendertrust.chainRpc';
const CONTRACT_KEY = 'rendertrust.chainContract';

export interface ChainSettings {
  rpcUrl: string;
  contract: string;
}

export function loadChainSettings(): ChainSettings {
  return { rpcUrl: localStorage.getItem(RPC_KEY) ?? '', contract: localStorage.getItem(CONTRACT_KEY) ?? '' };
}

export function saveChainSettings(s: ChainSettings) {
  for (const [k, v] of [
    [RPC_KEY, s.rpcUrl.trim()],
    [CONTRACT_KEY, s.contract.trim()],
  ]) {
    if (v) localStorage.setItem(k, v);
    else localStorage.removeItem(k);
  }
}
