// consoles.js: the two consoles of a VM in the page.
// - serial: xterm.js over the console WebSocket (docs/api.md "Console"); on
//   open vesseld sends the last 16 KiB of output, then whatever comes, and
//   what the person types goes to the guest's serial port;
// - graphical: noVNC over /vnc/ws, which vesseld proxies byte for byte to
//   QEMU's VNC server on the VM's Unix socket.
import { Terminal } from './vendor/xterm/xterm.mjs';
import { FitAddon } from './vendor/xterm/addon-fit.mjs';
import RFB from './vendor/novnc/core/rfb.js';
import { apiBytes, wsUrl } from './api.js';

export class SerialConsole {
  // running: whether the VM runs now. A stopped VM's console shows the
  // last run's output (GET /console) and cannot take input.
  constructor(el, name, running, onStatus) {
    this.term = new Terminal({
      scrollback: 10000, fontSize: 14, cursorBlink: true,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace',
      theme: { background: '#111417' },
    });
    this.fit = new FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(el);
    this.fit.fit();
    this.onResize = () => this.fit.fit();
    window.addEventListener('resize', this.onResize);
    this.closed = false;
    if (running) this.connect(name, onStatus);
    else this.showHistory(name, onStatus);
  }

  connect(name, onStatus) {
    const ws = new WebSocket(wsUrl(`vms/${encodeURIComponent(name)}/console/ws`));
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    onStatus('connecting', 'Connecting to the serial console…');
    ws.onopen = () => { onStatus('connected', 'Connected. Type into the console; the guest receives every key.'); this.term.focus(); };
    ws.onmessage = (e) => this.term.write(typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
    ws.onclose = (e) => {
      if (this.closed) return;
      onStatus('closed', e.reason ? `The console closed: ${e.reason}.` :
        'The console connection closed (the VM stopped, or vesseld restarted). Reopen the console to reconnect.');
    };
    const enc = new TextEncoder();
    this.term.onData((d) => { if (ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d)); });
  }

  async showHistory(name, onStatus) {
    onStatus('stopped', 'This VM is not running: below is the output of its last run. Start the VM to type into its console.');
    try {
      const bytes = await apiBytes(`vms/${encodeURIComponent(name)}/console`);
      this.term.write(bytes.slice(Math.max(0, bytes.length - 65536)));
    } catch (e) {
      onStatus('stopped', `This VM is not running, and its last output could not be read: ${e.message}`);
    }
  }

  destroy() {
    this.closed = true;
    window.removeEventListener('resize', this.onResize);
    if (this.ws) this.ws.close();
    this.term.dispose();
  }
}

export class VncConsole {
  constructor(el, name, onStatus) {
    onStatus('connecting', 'Connecting to the graphical console…');
    this.closed = false;
    this.rfb = new RFB(el, wsUrl(`vms/${encodeURIComponent(name)}/vnc/ws`), { wsProtocols: ['binary'] });
    this.rfb.scaleViewport = true;
    this.rfb.background = '#111417';
    this.rfb.addEventListener('connect', () => onStatus('connected', 'Connected to the VM\'s display.'));
    this.rfb.addEventListener('disconnect', (e) => {
      if (this.closed) return;
      onStatus('closed', e.detail.clean ? 'The graphical console closed.' :
        'The graphical console could not connect or was cut off (the VM stopped, or vesseld refused it).');
    });
    this.rfb.addEventListener('securityfailure', (e) => onStatus('closed', `VNC security failure: ${e.detail.reason || 'unknown'}`));
  }

  sendCtrlAltDel() { this.rfb.sendCtrlAltDel(); }

  destroy() {
    this.closed = true;
    try { this.rfb.disconnect(); } catch (e) { /* already closed */ }
  }
}
