// The desktop bridge the Electron preload exposes (electron/preload.cts);
// undefined in a browser.

import type { TokenStore } from './api';

export type DesktopCommand = 'refresh' | 'new-job' | 'help' | `tab-${1 | 2 | 3 | 4}`;

export interface DesktopBridge {
  /** The refresh token, encrypted with the OS keychain (safeStorage). */
  loadRefreshToken(): Promise<string | null>;
  saveRefreshToken(token: string | null): Promise<void>;
  /** Menu accelerators (Ctrl/Cmd+N, R, 1–4) arrive here instead of as key presses. */
  onCommand(cb: (c: DesktopCommand) => void): () => void;
  /** The server the desktop app talks to. */
  defaultServer: string;
}

declare global {
  interface Window {
    rendertrust?: DesktopBridge;
  }
}

export const desktop = (): DesktopBridge | undefined => window.rendertrust;

export const desktopTokenStore = (d: DesktopBridge): TokenStore => ({
  load: () => d.loadRefreshToken(),
  save: (t) => d.saveRefreshToken(t),
});
