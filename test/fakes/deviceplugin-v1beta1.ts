// The kubelet device plugin API, v1beta1, as Kubernetes 1.20 defines it
// (staging/src/k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1/api.proto and constants.go; checked
// against the 1.20.2 source the lab builds): proto package "v1beta1", so the gRPC paths are
// /v1beta1.Registration/... and /v1beta1.DevicePlugin/.... Each message gets an encoder and a
// decoder over protobuf-lite; the field numbers in the comments are the proto's.

import { ProtoMessage, ProtoWriter } from './protobuf-lite';

/** constants.go: Version, the only entry of SupportedVersions in 1.20. */
export const API_VERSION = 'v1beta1';
export const HEALTHY = 'Healthy';
export const UNHEALTHY = 'Unhealthy';
/** constants.go: DevicePluginPath (kubelet 1.20 hard-codes it, whatever --root-dir says). */
export const DEFAULT_PLUGIN_DIR = '/var/lib/kubelet/device-plugins';
/** constants.go: KubeletSocket's file name inside DevicePluginPath. */
export const KUBELET_SOCKET = 'kubelet.sock';

export const RPC = {
  register: '/v1beta1.Registration/Register',
  getDevicePluginOptions: '/v1beta1.DevicePlugin/GetDevicePluginOptions',
  listAndWatch: '/v1beta1.DevicePlugin/ListAndWatch',
  getPreferredAllocation: '/v1beta1.DevicePlugin/GetPreferredAllocation',
  allocate: '/v1beta1.DevicePlugin/Allocate',
  preStartContainer: '/v1beta1.DevicePlugin/PreStartContainer',
} as const;

export interface Codec<T> {
  encode(value: T): Buffer;
  decode(buf: Buffer): T;
}

/** Empty, PreStartContainerResponse: no fields. Unknown fields in what arrives are ignored. */
export const EmptyCodec: Codec<Record<string, never>> = {
  encode: () => Buffer.alloc(0),
  decode: (buf) => {
    new ProtoMessage(buf);
    return {};
  },
};

export interface DevicePluginOptions {
  preStartRequired: boolean; // 1
  getPreferredAllocationAvailable: boolean; // 2
}

export const DevicePluginOptionsCodec: Codec<DevicePluginOptions> = {
  encode: (o) => new ProtoWriter().bool(1, o.preStartRequired).bool(2, o.getPreferredAllocationAvailable).finish(),
  decode: (buf) => fromOptions(new ProtoMessage(buf)),
};

function fromOptions(m: ProtoMessage): DevicePluginOptions {
  return { preStartRequired: m.bool(1), getPreferredAllocationAvailable: m.bool(2) };
}

export interface RegisterRequest {
  version: string; // 1
  /** The plugin's socket file name, relative to the device plugin directory. */
  endpoint: string; // 2
  resourceName: string; // 3
  options: DevicePluginOptions | undefined; // 4
}

export const RegisterRequestCodec: Codec<RegisterRequest> = {
  encode: (r) => new ProtoWriter()
    .string(1, r.version).string(2, r.endpoint).string(3, r.resourceName)
    .message(4, r.options && DevicePluginOptionsCodec.encode(r.options))
    .finish(),
  decode: (buf) => {
    const m = new ProtoMessage(buf);
    const opts = m.message(4);
    return { version: m.string(1), endpoint: m.string(2), resourceName: m.string(3), options: opts && fromOptions(opts) };
  },
};

export interface Device {
  id: string; // 1 (ID)
  health: string; // 2
  /** TopologyInfo{repeated NUMANode nodes = 1}, NUMANode{int64 ID = 1}: the NUMA node IDs. */
  numaNodes?: number[]; // 3
}

function encodeDevice(d: Device): Buffer {
  const topology = d.numaNodes && new ProtoWriter().messages(1, d.numaNodes.map((id) => new ProtoWriter().int(1, id).finish())).finish();
  return new ProtoWriter().string(1, d.id).string(2, d.health).message(3, topology).finish();
}

function decodeDevice(m: ProtoMessage): Device {
  const d: Device = { id: m.string(1), health: m.string(2) };
  const topology = m.message(3);
  if (topology) d.numaNodes = topology.messages(1).map((n) => n.int(1));
  return d;
}

export interface ListAndWatchResponse {
  devices: Device[]; // 1
}

export const ListAndWatchResponseCodec: Codec<ListAndWatchResponse> = {
  encode: (r) => new ProtoWriter().messages(1, r.devices.map(encodeDevice)).finish(),
  decode: (buf) => ({ devices: new ProtoMessage(buf).messages(1).map(decodeDevice) }),
};

export interface ContainerPreferredAllocationRequest {
  availableDeviceIds: string[]; // 1
  mustIncludeDeviceIds: string[]; // 2
  allocationSize: number; // 3 (int32)
}

export interface PreferredAllocationRequest {
  containerRequests: ContainerPreferredAllocationRequest[]; // 1
}

export const PreferredAllocationRequestCodec: Codec<PreferredAllocationRequest> = {
  encode: (r) => new ProtoWriter().messages(1, r.containerRequests.map((c) => new ProtoWriter()
    .strings(1, c.availableDeviceIds).strings(2, c.mustIncludeDeviceIds).int(3, c.allocationSize).finish())).finish(),
  decode: (buf) => ({
    containerRequests: new ProtoMessage(buf).messages(1).map((c) => ({
      availableDeviceIds: c.strings(1), mustIncludeDeviceIds: c.strings(2), allocationSize: c.int(3),
    })),
  }),
};

export interface PreferredAllocationResponse {
  /** ContainerPreferredAllocationResponse{repeated string deviceIDs = 1} per container. */
  containerResponses: Array<{ deviceIds: string[] }>; // 1
}

export const PreferredAllocationResponseCodec: Codec<PreferredAllocationResponse> = {
  encode: (r) => new ProtoWriter().messages(1, r.containerResponses.map((c) => new ProtoWriter().strings(1, c.deviceIds).finish())).finish(),
  decode: (buf) => ({ containerResponses: new ProtoMessage(buf).messages(1).map((c) => ({ deviceIds: c.strings(1) })) }),
};

export interface AllocateRequest {
  /** ContainerAllocateRequest{repeated string devicesIDs = 1} per container. */
  containerRequests: Array<{ devicesIds: string[] }>; // 1
}

export const AllocateRequestCodec: Codec<AllocateRequest> = {
  encode: (r) => new ProtoWriter().messages(1, r.containerRequests.map((c) => new ProtoWriter().strings(1, c.devicesIds).finish())).finish(),
  decode: (buf) => ({ containerRequests: new ProtoMessage(buf).messages(1).map((c) => ({ devicesIds: c.strings(1) })) }),
};

export interface Mount {
  containerPath: string; // 1
  hostPath: string; // 2
  readOnly: boolean; // 3
}

export interface DeviceSpec {
  containerPath: string; // 1
  hostPath: string; // 2
  permissions: string; // 3
}

export interface ContainerAllocateResponse {
  envs: Record<string, string>; // 1
  mounts: Mount[]; // 2
  devices: DeviceSpec[]; // 3
  annotations: Record<string, string>; // 4
}

export interface AllocateResponse {
  containerResponses: ContainerAllocateResponse[]; // 1
}

function encodeContainerAllocateResponse(c: ContainerAllocateResponse): Buffer {
  return new ProtoWriter()
    .stringMap(1, c.envs)
    .messages(2, c.mounts.map((m) => new ProtoWriter().string(1, m.containerPath).string(2, m.hostPath).bool(3, m.readOnly).finish()))
    .messages(3, c.devices.map((d) => new ProtoWriter().string(1, d.containerPath).string(2, d.hostPath).string(3, d.permissions).finish()))
    .stringMap(4, c.annotations)
    .finish();
}

export const AllocateResponseCodec: Codec<AllocateResponse> = {
  encode: (r) => new ProtoWriter().messages(1, r.containerResponses.map(encodeContainerAllocateResponse)).finish(),
  decode: (buf) => ({
    containerResponses: new ProtoMessage(buf).messages(1).map((c) => ({
      envs: c.stringMap(1),
      mounts: c.messages(2).map((m) => ({ containerPath: m.string(1), hostPath: m.string(2), readOnly: m.bool(3) })),
      devices: c.messages(3).map((d) => ({ containerPath: d.string(1), hostPath: d.string(2), permissions: d.string(3) })),
      annotations: c.stringMap(4),
    })),
  }),
};

export interface PreStartContainerRequest {
  devicesIds: string[]; // 1
}

export const PreStartContainerRequestCodec: Codec<PreStartContainerRequest> = {
  encode: (r) => new ProtoWriter().strings(1, r.devicesIds).finish(),
  decode: (buf) => ({ devicesIds: new ProtoMessage(buf).strings(1) }),
};
