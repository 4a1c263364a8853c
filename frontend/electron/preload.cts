// The bridge between the page and the main process: the refresh token (kept
// with safeStorage), menu commands, and the default server. Nothing else of
// Electron or Node reaches the page.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';

const serverArg = process.argv.find((a) => a.startsWith('--rendertrust-server='));

contextBridge.exposeInMainWorld('rendertrust', {
  defaultServer: serverArg ? serverArg.slice('--rendertrust-server='.length) : 'http://127.0.0.1:8080',
  loadRefreshToken: (): Promise<string | null> => ipcRenderer.invoke('rendertrust:load-token'),
  saveRefreshToken: (token: string | null): Promise<void> => ipcRenderer.invoke('rendertrust:save-token', token),
  onCommand: (cb: (command: string) => void) => {
    const listener = (_e: IpcRendererEvent, command: string) => cb(command);
    ipcRenderer.on('rendertrust:command', listener);
    return () => ipcRenderer.removeListener('rendertrust:command', listener);
  },
});
