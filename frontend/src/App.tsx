import { useCallback, useEffect, useMemo, useState } from 'react';
import { ApiClient, sessionTokenStore, type User } from './api';
import { desktop, desktopTokenStore, type DesktopCommand } from './desktop';
import { Login } from './screens/Login';
import { Jobs } from './screens/Jobs';
import { Credits } from './screens/Credits';
import { Ledger } from './screens/Ledger';
import { Account } from './screens/Account';
import { Help, SHORTCUTS } from './screens/Help';

export const TABS = ['jobs', 'credits', 'ledger', 'account'] as const;
export type Tab = (typeof TABS)[number];
const TAB_LABELS: Record<Tab, string> = { jobs: 'Jobs', credits: 'Credits', ledger: 'Ledger', account: 'Account' };

const SERVER_KEY = 'rendertrust.server';

function initialServer(): string {
  const saved = localStorage.getItem(SERVER_KEY);
  if (saved) return saved;
  const d = desktop();
  if (d) return d.defaultServer;
  return window.location.origin;
}

function tabFromHash(): Tab {
  const t = window.location.hash.replace(/^#\/?/, '').split('/')[0];
  return (TABS as readonly string[]).includes(t) ? (t as Tab) : 'jobs';
}

/** Signals the shell sends to the current screen. */
export interface Signals {
  /** Bumped by Ctrl/Cmd+R: reload the page's data. */
  refresh: number;
  /** Bumped by Ctrl/Cmd+N: open the Submit Job form. */
  newJob: number;
}

export function App() {
  const [server, setServer] = useState(initialServer);
  const [user, setUser] = useState<User | null>(null);
  const [resuming, setResuming] = useState(true);
  const [tab, setTabState] = useState<Tab>(tabFromHash);
  const [signals, setSignals] = useState<Signals>({ refresh: 0, newJob: 0 });
  const [helpOpen, setHelpOpen] = useState(false);
  const [verifyEntry, setVerifyEntry] = useState<string>('');

  const client = useMemo(() => {
    const d = desktop();
    return new ApiClient({
      baseUrl: server,
      store: d ? desktopTokenStore(d) : sessionTokenStore,
      onLoggedOut: () => setUser(null),
    });
  }, [server]);

  useEffect(() => {
    let live = true;
    setResuming(true);
    client
      .resume()
      .then(async (ok) => {
        if (ok && live) setUser(await client.me());
      })
      .catch(() => undefined)
      .finally(() => live && setResuming(false));
    return () => {
      live = false;
    };
  }, [client]);

  const setTab = useCallback((t: Tab) => {
    setTabState(t);
    if (window.location.hash !== `#/${t}`) window.history.replaceState(null, '', `#/${t}`);
  }, []);

  const command = useCallback(
    (c: DesktopCommand) => {
      if (c === 'refresh') setSignals((s) => ({ ...s, refresh: s.refresh + 1 }));
      else if (c === 'new-job') {
        setTab('jobs');
        setSignals((s) => ({ ...s, newJob: s.newJob + 1 }));
      } else if (c === 'help') setHelpOpen((o) => !o);
      else setTab(TABS[Number(c.slice(4)) - 1]);
    },
    [setTab],
  );

  useEffect(() => {
    const onHash = () => setTabState(tabFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => desktop()?.onCommand(command), [command]);

  useEffect(() => {
    if (!user) return;
    const onKey = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      if (mod && !e.altKey && key === 'n') command('new-job');
      else if (mod && !e.altKey && key === 'r') command('refresh');
      else if (mod && !e.altKey && ['1', '2', '3', '4'].includes(key)) command(`tab-${Number(key) as 1 | 2 | 3 | 4}`);
      else if (!mod && key === '?' && !isTyping(e.target)) command('help');
      else if (key === 'escape' && helpOpen) setHelpOpen(false);
      else return;
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [user, command, helpOpen]);

  const changeServer = (s: string) => {
    localStorage.setItem(SERVER_KEY, s);
    setServer(s);
  };

  if (resuming) return <div className="splash" aria-busy="true">Loading…</div>;
  if (!user) return <Login client={client} server={server} onServer={changeServer} onLoggedIn={setUser} />;

  const verify = (entryId: string) => {
    setVerifyEntry(entryId);
    setTab('ledger');
  };

  return (
    <div className="shell">
      <nav className="sidebar" aria-label="Main">
        <div className="brand">RenderTrust</div>
        <ul>
          {TABS.map((t, i) => (
            <li key={t}>
              <a
                href={`#/${t}`}
                className={t === tab ? 'active' : ''}
                aria-current={t === tab ? 'page' : undefined}
                onClick={(e) => {
                  e.preventDefault();
                  setTab(t);
                }}
              >
                {TAB_LABELS[t]} <kbd>{i + 1}</kbd>
              </a>
            </li>
          ))}
        </ul>
        <button type="button" className="link help-button" onClick={() => setHelpOpen(true)} aria-haspopup="dialog">
          Keyboard shortcuts <kbd>?</kbd>
        </button>
        <ul className="shortcut-hint" aria-hidden="true">
          {SHORTCUTS.map((s) => (
            <li key={s.keys}>
              <kbd>{s.keys}</kbd> {s.action}
            </li>
          ))}
        </ul>
      </nav>
      <main className="content" id="main">
        {tab === 'jobs' && <Jobs client={client} signals={signals} goCredits={() => setTab('credits')} />}
        {tab === 'credits' && <Credits client={client} signals={signals} onVerify={verify} />}
        {tab === 'ledger' && <Ledger client={client} signals={signals} entryId={verifyEntry} />}
        {tab === 'account' && <Account client={client} user={user} server={server} onServer={changeServer} />}
      </main>
      {helpOpen && <Help onClose={() => setHelpOpen(false)} />}
    </div>
  );
}

function isTyping(t: EventTarget | null): boolean {
  return t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
}
