// Command line for FakeSriovDevicePlugin, to run next to a lab node's kubelet (inside the node's
// mount namespace, where /var/lib/kubelet/device-plugins is that node's own):
//
//   fake-sriov-device-plugin --resource ovnode.io/fake_vf --devices 0000:03:00.2,0000:03:00.3 \
//     [--dir /var/lib/kubelet/device-plugins] [--endpoint NAME.sock] [--preferred-allocation]
//
// Node 20 does not run TypeScript, so this file is bundled first (esbuild is a dev dependency):
//   npx esbuild test/fakes/fake-sriov-device-plugin-main.ts --bundle --platform=node --target=node20 \
//     --outfile=build/fakes/fake-sriov-device-plugin.js
//   bash scripts/lab/exec.sh node1 node build/fakes/fake-sriov-device-plugin.js --resource ... --devices ...
//
// Logs one JSON object per line on stdout ({"time","msg",...}); the line with msg "registered with
// kubelet" says it is usable. SIGTERM / SIGINT stop it (socket removed) with exit code 0; exit
// code 1 when it cannot start (bad arguments, kubelet rejected the registration), 2 on usage errors.

import { parseArgs } from 'node:util';
import { DEFAULT_PLUGIN_DIR } from './deviceplugin-v1beta1';
import { FakeSriovDevicePlugin } from './fake-sriov-device-plugin';

function log(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), msg, ...fields })}\n`);
}

function usage(problem: string): never {
  log('usage error', { error: problem, usage: 'fake-sriov-device-plugin --resource DOMAIN/NAME --devices PCI[,PCI...] [--dir DIR] [--endpoint NAME.sock] [--preferred-allocation]' });
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        resource: { type: 'string' },
        devices: { type: 'string' },
        dir: { type: 'string', default: DEFAULT_PLUGIN_DIR },
        endpoint: { type: 'string' },
        'preferred-allocation': { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    usage((e as Error).message);
  }
  if (!values.resource) usage('--resource is required');
  if (!values.devices) usage('--devices is required');
  const deviceIds = values.devices.split(',').map((d) => d.trim()).filter((d) => d !== '');

  let plugin: FakeSriovDevicePlugin;
  try {
    plugin = new FakeSriovDevicePlugin({
      resourceName: values.resource,
      deviceIds,
      pluginDir: values.dir,
      preferredAllocation: values['preferred-allocation'],
      log,
      ...(values.endpoint ? { endpoint: values.endpoint } : {}),
    });
  } catch (e) {
    log('cannot start', { error: (e as Error).message });
    process.exit(1);
  }

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log('signal: stopping', { signal });
    plugin.stop().then(() => process.exit(0), (e: unknown) => {
      log('stop failed', { error: (e as Error).message });
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  try {
    await plugin.start();
  } catch (e) {
    if (stopping) return; // stop() during start() rejects it; shutdown() exits
    log('cannot start', { error: (e as Error).message });
    process.exit(1);
  }
}

void main();
