import { useState, type FormEvent } from 'react';
import { ApiError, type ApiClient, type User } from '../api';
import { errorText } from '../format';

/** The guide's minimum password length. */
export const PASSWORD_MIN = 8;

interface Props {
  client: ApiClient;
  server: string;
  onServer: (s: string) => void;
  onLoggedIn: (u: User) => void;
}

export function loginError(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 429) {
      const wait = e.retryAfter ?? 60;
      return `Too many attempts. Try again in ${wait} second${wait === 1 ? '' : 's'}.`;
    }
    if (e.status === 401) return 'Wrong email or password.';
    if (e.status === 409) return 'An account with this email already exists. Log in instead.';
    return e.message;
  }
  return `Cannot reach the server: ${errorText(e)}`;
}

export function Login({ client, server, onServer, onLoggedIn }: Props) {
  const [mode, setMode] = useState<'login' | 'register'>('login');
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [serverField, setServerField] = useState(server);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError('');
    if (mode === 'register' && password.length < PASSWORD_MIN) {
      setError(`The password needs at least ${PASSWORD_MIN} characters.`);
      return;
    }
    setBusy(true);
    try {
      const u = mode === 'register' ? await client.register(email, name, password) : await client.login(email, password);
      onLoggedIn(u ?? (await client.me()));
    } catch (err) {
      setError(loginError(err));
    } finally {
      setBusy(false);
    }
  };

  const registering = mode === 'register';
  return (
    <div className="login">
      <form className="card login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">{registering ? 'Create Account' : 'Log in to RenderTrust'}</h1>
        <label>
          Email
          <input type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} autoFocus />
        </label>
        {registering && (
          <label>
            Name
            <input autoComplete="name" required value={name} onChange={(e) => setName(e.target.value)} />
          </label>
        )}
        <label>
          Password{registering && ` (at least ${PASSWORD_MIN} characters)`}
          <input
            type="password"
            autoComplete={registering ? 'new-password' : 'current-password'}
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        {error && (
          <p className="alert error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {registering ? 'Register' : 'Log in'}
        </button>
        <button
          type="button"
          className="link"
          onClick={() => {
            setMode(registering ? 'login' : 'register');
            setError('');
          }}
        >
          {registering ? 'I have an account: log in' : 'Create Account'}
        </button>
        <details className="server">
          <summary>Server: {server}</summary>
          <label>
            Server URL
            <input type="url" value={serverField} onChange={(e) => setServerField(e.target.value)} />
          </label>
          <button type="button" onClick={() => onServer(serverField.trim())}>
            Use this server
          </button>
        </details>
      </form>
    </div>
  );
}
