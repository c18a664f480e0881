// FakeSriovDevicePlugin: a kubelet device plugin (API v1beta1, Kubernetes 1.20) that advertises
// fake SR-IOV VFs by PCI address, as the SR-IOV network device plugin does for real ones. With it a
// real kubelet accounts for and allocates the VFs of test/fakes/fake-sriov-sysfs.ts, and Multus
// finds the allocated IDs through kubelet's pod-resources API and hands them to the CNI as
// deviceID, the production path without hardware.
//
// Life cycle, as kubelet 1.20's device manager (pkg/kubelet/cm/devicemanager) expects:
//   - serve the DevicePlugin service on <dir>/<endpoint> (a unix socket), then call
//     Registration.Register on <dir>/kubelet.sock with that endpoint (relative to <dir>);
//   - kubelet dials back and keeps ListAndWatch open: the device list goes out at once and again
//     on every health change;
//   - on (re)start kubelet deletes every socket in <dir> ("device plugins can monitor this and use
//     it as a signal to re-register"): a watch on <dir> sees ours go, and we listen again and
//     register with the new kubelet once its socket is there. Event driven: no polling.
// Allocate answers as the SR-IOV device plugin does for netdevice VFs: one env var
// PCIDEVICE_<RESOURCE>=<comma-separated PCI addresses> per container, no device nodes.

import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AllocateRequestCodec, AllocateResponseCodec, API_VERSION, DEFAULT_PLUGIN_DIR, DevicePluginOptionsCodec, EmptyCodec, HEALTHY,
  KUBELET_SOCKET, ListAndWatchResponseCodec, PreferredAllocationRequestCodec, PreferredAllocationResponseCodec,
  PreStartContainerRequestCodec, RegisterRequestCodec, RPC, UNHEALTHY, type ContainerAllocateResponse, type DevicePluginOptions,
} from './deviceplugin-v1beta1';
import { GrpcClient, GrpcError, GrpcServer, Status, type ServerStreamCall } from './grpc-lite';

export type PluginLog = (msg: string, fields?: Record<string, unknown>) => void;

export interface FakeSriovDevicePluginOptions {
  /** Extended resource name, "<domain>/<name>" (kubelet rejects others), e.g. ovnode.io/fake_vf. */
  resourceName: string;
  /** The VFs' PCI addresses: the device IDs kubelet allocates and Multus passes on as deviceID. */
  deviceIds: string[];
  /** Default /var/lib/kubelet/device-plugins (what kubelet 1.20 hard-codes). */
  pluginDir?: string;
  /** Socket file name inside pluginDir; default derived from the resource name. */
  endpoint?: string;
  /** Advertise GetPreferredAllocation so kubelet asks before allocating (off, as the SR-IOV plugin by default). */
  preferredAllocation?: boolean;
  /** Deadline of a Register call. Default 10 s. */
  registerTimeoutMs?: number;
  log?: PluginLog;
}

/** The env var the SR-IOV network device plugin sets: PCIDEVICE_ + resource name, upper case, non-alphanumerics as '_'. */
export function pciDeviceEnvName(resourceName: string): string {
  return `PCIDEVICE_${resourceName.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** Socket file name for a resource: fake-sriov-<resource with non-alphanumerics as '_'>.sock. */
export function defaultEndpoint(resourceName: string): string {
  return `fake-sriov-${resourceName.replace(/[^A-Za-z0-9]/g, '_')}.sock`;
}

/** A file's identity: inode + change time, so a socket deleted and created again counts as new
 *  even when the file system hands out the same inode number. */
async function identity(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path, { bigint: true });
    return s.isSocket() ? `${s.ino}:${s.ctimeNs}` : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export class FakeSriovDevicePlugin extends EventEmitter {
  readonly resourceName: string;
  readonly pluginDir: string;
  readonly endpoint: string;
  /** Where the DevicePlugin service listens. */
  readonly socketPath: string;
  /** Where kubelet's Registration service is expected. */
  readonly kubeletSocketPath: string;
  /** Successful Register calls so far. */
  registrations = 0;
  /** Allocate calls served: the device IDs of each container request. */
  readonly allocations: string[][] = [];

  private readonly health = new Map<string, boolean>();
  private readonly options: DevicePluginOptions;
  private readonly registerTimeoutMs: number;
  private readonly log: PluginLog;
  private readonly streams = new Set<ServerStreamCall>();
  private server: GrpcServer | undefined;
  private watcher: FSWatcher | undefined;
  /** Identity of our socket as we created it, and of the kubelet socket we last registered with. */
  private listeningId: string | undefined;
  private registeredWith: string | undefined;
  /** reconcile() runs one at a time; events during a run queue one more run. */
  private chain: Promise<void> = Promise.resolve();
  private queued = false;
  private stopped = false;
  private firstRegistration: { resolve: () => void; reject: (e: Error) => void } | undefined;

  constructor(opts: FakeSriovDevicePluginOptions) {
    super();
    if (!/^[A-Za-z0-9.-]+\/[A-Za-z0-9._-]+$/.test(opts.resourceName)) {
      throw new Error(`FakeSriovDevicePlugin: resource name ${JSON.stringify(opts.resourceName)} is not <domain>/<name>`);
    }
    if (opts.deviceIds.length === 0) throw new Error('FakeSriovDevicePlugin: no device IDs');
    for (const id of opts.deviceIds) {
      if (this.health.has(id)) throw new Error(`FakeSriovDevicePlugin: device ID ${id} given twice`);
      this.health.set(id, true);
    }
    this.resourceName = opts.resourceName;
    this.pluginDir = opts.pluginDir ?? DEFAULT_PLUGIN_DIR;
    this.endpoint = opts.endpoint ?? defaultEndpoint(opts.resourceName);
    if (this.endpoint.includes('/') || this.endpoint === KUBELET_SOCKET) {
      throw new Error(`FakeSriovDevicePlugin: endpoint ${this.endpoint} must be a file name other than ${KUBELET_SOCKET}`);
    }
    this.socketPath = join(this.pluginDir, this.endpoint);
    this.kubeletSocketPath = join(this.pluginDir, KUBELET_SOCKET);
    // sun_path holds 107 bytes and a NUL: a longer path is cut short by the kernel, and the socket
    // then exists under a name kubelet never dials. Pass a shorter pluginDir (a symlink will do).
    for (const path of [this.socketPath, this.kubeletSocketPath]) {
      if (Buffer.byteLength(path) > 107) throw new Error(`FakeSriovDevicePlugin: socket path ${path} is longer than a unix socket address allows (107 bytes)`);
    }
    this.options = { preStartRequired: false, getPreferredAllocationAvailable: opts.preferredAllocation ?? false };
    this.registerTimeoutMs = opts.registerTimeoutMs ?? 10_000;
    this.log = opts.log ?? (() => {});
  }

  /** Device IDs in the order given, with their current health. */
  devices(): Array<{ id: string; health: string }> {
    return [...this.health].map(([id, ok]) => ({ id, health: ok ? HEALTHY : UNHEALTHY }));
  }

  /**
   * Listens, watches the directory and registers with kubelet. Resolves after the first
   * successful Register (waiting for kubelet's socket to appear if need be); rejects when kubelet
   * answers the first Register with an error (e.g. a resource name it does not accept).
   */
  async start(): Promise<void> {
    if (this.watcher || this.stopped) throw new Error('FakeSriovDevicePlugin: start() called twice or after stop()');
    await mkdir(this.pluginDir, { recursive: true });
    const registered = new Promise<void>((resolve, reject) => {
      this.firstRegistration = { resolve, reject };
    });
    // Watch before listening, so no deletion between the two goes unseen.
    this.watcher = watch(this.pluginDir, (_event, name) => {
      // A null name means the kernel could not say which entry changed: look at both.
      if (name === null || name === this.endpoint || name === KUBELET_SOCKET) this.schedule();
    });
    this.watcher.on('error', (e) => {
      // The directory itself went away (its mount torn down): nothing left to watch.
      this.log('watch on plugin dir failed', { dir: this.pluginDir, error: e.message });
      this.failFirst(e);
    });
    this.schedule();
    try {
      await registered;
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Marks a device (un)healthy and pushes the new list on every open ListAndWatch. */
  setHealth(id: string, healthy: boolean): void {
    if (!this.health.has(id)) throw new Error(`FakeSriovDevicePlugin: unknown device ${id}`);
    if (this.health.get(id) === healthy) return;
    this.health.set(id, healthy);
    this.log('health changed', { device: id, health: healthy ? HEALTHY : UNHEALTHY, streams: this.streams.size });
    const update = this.deviceList();
    for (const s of this.streams) s.send(update);
  }

  /** Ends ListAndWatch streams, closes the server, removes the socket. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.watcher?.close();
    this.failFirst(new Error('FakeSriovDevicePlugin stopped before it registered'));
    await this.chain;
    for (const s of this.streams) s.end();
    this.streams.clear();
    await this.server?.close();
    this.server = undefined;
    // Only our own socket: after a kubelet restart the path may already be gone.
    if (this.listeningId !== undefined && (await identity(this.socketPath)) === this.listeningId) await rm(this.socketPath, { force: true });
    this.log('stopped', { socket: this.socketPath });
  }

  private failFirst(e: Error): void {
    this.firstRegistration?.reject(e);
    this.firstRegistration = undefined;
  }

  private schedule(): void {
    if (this.queued || this.stopped) return;
    this.queued = true;
    this.chain = this.chain.then(() => {
      this.queued = false;
      return this.reconcile();
    }).catch((e: unknown) => {
      this.log('reconcile failed', { error: (e as Error).message });
      this.failFirst(e as Error);
    });
  }

  /** Brings things to: our socket exists and is ours, and we registered with the kubelet socket there is now. */
  private async reconcile(): Promise<void> {
    if (this.stopped) return;
    const ours = await identity(this.socketPath);
    if (ours === undefined || ours !== this.listeningId) {
      if (this.listeningId !== undefined) this.log('plugin socket gone (kubelet restarted?): listening again', { socket: this.socketPath });
      await this.listen();
      this.registeredWith = undefined;
    }
    const kubelet = await identity(this.kubeletSocketPath);
    if (kubelet === undefined) {
      this.log('waiting for kubelet socket', { socket: this.kubeletSocketPath });
      return;
    }
    if (kubelet === this.registeredWith) return;
    try {
      await this.register();
    } catch (e) {
      if (e instanceof GrpcError && e.code !== Status.UNAVAILABLE && e.code !== Status.DEADLINE_EXCEEDED) {
        // kubelet answered and said no: retrying the same request cannot help.
        this.log('kubelet rejected registration', { code: e.code, error: e.message });
        this.failFirst(e);
        return;
      }
      // A stale socket of a dead kubelet (ECONNREFUSED) or one going away: the next kubelet
      // creates its socket anew, and that event brings us back here.
      this.log('kubelet not reachable: waiting for its socket to be created again', { error: (e as Error).message });
      return;
    }
    this.registeredWith = kubelet;
    this.registrations++;
    this.log('registered with kubelet', { resource: this.resourceName, endpoint: this.endpoint, registrations: this.registrations });
    this.emit('registered', this.registrations);
    this.firstRegistration?.resolve();
    this.firstRegistration = undefined;
  }

  private async listen(): Promise<void> {
    // The kubelet these served is gone (it deleted the socket): no grace for its connections.
    for (const s of this.streams) s.end();
    this.streams.clear();
    await this.server?.close(0);
    await rm(this.socketPath, { force: true }); // stale socket of an earlier run: listen() would fail with EADDRINUSE
    const server = new GrpcServer()
      .unary(RPC.getDevicePluginOptions, (req) => {
        EmptyCodec.decode(req);
        return DevicePluginOptionsCodec.encode(this.options);
      })
      .serverStream(RPC.listAndWatch, (req, call) => this.listAndWatch(req, call))
      .unary(RPC.getPreferredAllocation, (req) => this.preferredAllocation(req))
      .unary(RPC.allocate, (req) => this.allocate(req))
      .unary(RPC.preStartContainer, (req) => {
        PreStartContainerRequestCodec.decode(req);
        return EmptyCodec.encode({});
      });
    await server.listen(this.socketPath);
    this.server = server;
    this.listeningId = await identity(this.socketPath);
    this.log('listening', { socket: this.socketPath, devices: [...this.health.keys()] });
  }

  private async register(): Promise<void> {
    const client = await GrpcClient.connect(this.kubeletSocketPath, this.registerTimeoutMs);
    try {
      const request = RegisterRequestCodec.encode({ version: API_VERSION, endpoint: this.endpoint, resourceName: this.resourceName, options: this.options });
      await client.unary(RPC.register, request, { timeoutMs: this.registerTimeoutMs });
    } finally {
      await client.close();
    }
  }

  private deviceList(): Buffer {
    return ListAndWatchResponseCodec.encode({ devices: this.devices() });
  }

  private listAndWatch(req: Buffer, call: ServerStreamCall): void {
    EmptyCodec.decode(req);
    this.streams.add(call);
    call.onClose(() => this.streams.delete(call));
    this.log('ListAndWatch opened', { streams: this.streams.size });
    call.send(this.deviceList());
  }

  private allocate(req: Buffer): Buffer {
    const request = AllocateRequestCodec.decode(req);
    const containerResponses: ContainerAllocateResponse[] = request.containerRequests.map(({ devicesIds }) => {
      const unknown = devicesIds.filter((id) => !this.health.has(id));
      if (unknown.length > 0) throw new GrpcError(Status.INVALID_ARGUMENT, `unknown device(s) ${unknown.join(', ')} for ${this.resourceName}`);
      return { envs: { [pciDeviceEnvName(this.resourceName)]: devicesIds.join(',') }, mounts: [], devices: [], annotations: {} };
    });
    for (const c of request.containerRequests) this.allocations.push(c.devicesIds);
    this.log('Allocate', { containers: request.containerRequests.map((c) => c.devicesIds) });
    this.emit('allocate', request.containerRequests.map((c) => c.devicesIds));
    return AllocateResponseCodec.encode({ containerResponses });
  }

  /** The devices kubelet must include, then the first available ones, up to the size asked for. */
  private preferredAllocation(req: Buffer): Buffer {
    const request = PreferredAllocationRequestCodec.decode(req);
    return PreferredAllocationResponseCodec.encode({
      containerResponses: request.containerRequests.map((c) => {
        const picked = [...c.mustIncludeDeviceIds];
        for (const id of c.availableDeviceIds) {
          if (picked.length >= c.allocationSize) break;
          if (!picked.includes(id)) picked.push(id);
        }
        return { deviceIds: picked };
      }),
    });
  }
}
