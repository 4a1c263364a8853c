// The desktop app's main process, kept thin: one window showing the same
// build the server serves, a menu whose accelerators drive the page (Ctrl/
// Cmd+R refreshes the page's data instead of reloading the window), results
// saved to the Downloads folder, and the refresh token kept with safeStorage.
import { app, BrowserWindow, ipcMain, Menu, net, protocol, safeStorage, shell } from 'electron';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

/** The app's own origin; the server's default CORS origins include it. */
const SCHEME = 'app';
const HOST = 'rendertrust';
const DIST = path.join(__dirname, '..', 'dist');
const TOKEN_FILE = () => path.join(app.getPath('userData'), 'refresh-token.bin');
/** The server a fresh install talks to (the Account screen changes it). */
const DEFAULT_SERVER = process.env.RENDERTRUST_SERVER || 'http://127.0.0.1:8080';

protocol.registerSchemesAsPrivileged([{ scheme: SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 800,
    minWidth: 360,
    title: 'RenderTrust',
    webPreferences: {
      preload: path.join(__dirname, 'preload.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      additionalArguments: [`--rendertrust-server=${DEFAULT_SERVER}`],
    },
  });
  // Links (Stripe Checkout) open in the user's browser, never in the app.
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (url.startsWith('https://') || url.startsWith('http://')) void shell.openExternal(url);
    return { action: 'deny' };
  });
  win.webContents.on('will-navigate', (e, url) => {
    if (!url.startsWith(`${SCHEME}://${HOST}/`)) e.preventDefault();
  });
  win.webContents.session.on('will-download', (_e, item) => {
    item.setSavePath(path.join(app.getPath('downloads'), path.basename(item.getFilename())));
  });
  void win.loadURL(`${SCHEME}://${HOST}/index.html`);
  return win;
}

function send(command: string) {
  BrowserWindow.getFocusedWindow()?.webContents.send('rendertrust:command', command);
}

function menu() {
  const tabs = ['Jobs', 'Credits', 'Ledger', 'Account'].map((label, i) => ({
    label,
    accelerator: `CmdOrCtrl+${i + 1}`,
    click: () => send(`tab-${i + 1}`),
  }));
  return Menu.buildFromTemplate([
    ...(process.platform === 'darwin' ? [{ role: 'appMenu' as const }] : []),
    {
      label: 'File',
      submenu: [
        { label: 'New Job…', accelerator: 'CmdOrCtrl+N', click: () => send('new-job') },
        { type: 'separator' },
        { role: process.platform === 'darwin' ? ('close' as const) : ('quit' as const) },
      ],
    },
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [
        { label: 'Refresh', accelerator: 'CmdOrCtrl+R', click: () => send('refresh') },
        { type: 'separator' },
        ...tabs,
        { type: 'separator' },
        { role: 'toggleDevTools' },
      ],
    },
    { label: 'Help', submenu: [{ label: 'Keyboard Shortcuts', accelerator: 'Shift+/', click: () => send('help') }] },
  ]);
}

ipcMain.handle('rendertrust:load-token', () => {
  if (!safeStorage.isEncryptionAvailable()) return null;
  try {
    return safeStorage.decryptString(fs.readFileSync(TOKEN_FILE()));
  } catch {
    return null;
  }
});

ipcMain.handle('rendertrust:save-token', (_e, token: string | null) => {
  if (token === null || !safeStorage.isEncryptionAvailable()) {
    fs.rmSync(TOKEN_FILE(), { force: true }); // never written in the clear
    return;
  }
  fs.writeFileSync(TOKEN_FILE(), safeStorage.encryptString(token), { mode: 0o600 });
});

void app.whenReady().then(() => {
  protocol.handle(SCHEME, (req) => {
    const rel = decodeURIComponent(new URL(req.url).pathname).replace(/^\/+/, '') || 'index.html';
    const file = path.normalize(path.join(DIST, rel));
    const inside = file.startsWith(DIST + path.sep) && fs.existsSync(file);
    return net.fetch(pathToFileURL(inside ? file : path.join(DIST, 'index.html')).toString());
  });
  Menu.setApplicationMenu(menu());
  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});
