import { useEffect, useState, type FormEvent } from 'react';
import type { ApiClient, ChainInfo, User } from '../api';
import { loadChainSettings, saveChainSettings } from '../settings';

interface Props {
  client: ApiClient;
  user: User;
  server: string;
  onServer: (s: string) => void;
}

export function Account({ client, user, server, onServer }: Props) {
  const [chain, setChain] = useState<ChainInfo | null>(null);
  const [settings, setSettings] = useState(loadChainSettings);
  const [saved, setSaved] = useState(false);
  const [serverField, setServerField] = useState(server);

  useEffect(() => {
    client
      .chain()
      .then(setChain)
      .catch(() => setChain(null));
  }, [client]);

  const save = (e: FormEvent) => {
    e.preventDefault();
    saveChainSettings(settings);
    setSaved(true);
  };

  return (
    <section aria-labelledby="account-title">
      <header className="page-header">
        <h1 id="account-title">Account</h1>
      </header>
      <div className="card">
        <dl className="facts">
          <dt>Logged in as</dt>
          <dd data-testid="who">
            {user.name} &lt;{user.email}&gt;
          </dd>
          <dt>Server</dt>
          <dd className="mono">{server}</dd>
        </dl>
        <button type="button" className="danger" onClick={() => void client.logout()}>
          Log out
        </button>
      </div>
      <form className="card" onSubmit={save} aria-labelledby="chain-title">
        <h2 id="chain-title">Proof checks</h2>
        <p className="muted">
          The server publishes chain {chain ? chain.chain_id : '—'}, contract{' '}
          <span className="mono">{chain?.contract || '—'}</span>
          {chain?.rpc_url ? (
            <>
              , JSON-RPC <span className="mono">{chain.rpc_url}</span>
            </>
          ) : (
            ', no public JSON-RPC URL'
          )}
          . To trust nothing from the server, read roots from your own node and contract address.
        </p>
        <label>
          Chain JSON-RPC URL
          <input
            type="url"
            value={settings.rpcUrl}
            placeholder={chain?.rpc_url || 'https://your-own-node.example'}
            onChange={(e) => {
              setSettings({ ...settings, rpcUrl: e.target.value });
              setSaved(false);
            }}
          />
        </label>
        <label>
          Anchor contract
          <input
            className="mono"
            value={settings.contract}
            placeholder={chain?.contract || '0x…'}
            onChange={(e) => {
              setSettings({ ...settings, contract: e.target.value });
              setSaved(false);
            }}
          />
        </label>
        <button type="submit">Save</button>
        {saved && <span role="status"> Saved.</span>}
      </form>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          onServer(serverField.trim());
        }}
      >
        <label>
          Server URL
          <input type="url" value={serverField} onChange={(e) => setServerField(e.target.value)} />
        </label>
        <button type="submit">Switch server</button>
      </form>
    </section>
  );
}
