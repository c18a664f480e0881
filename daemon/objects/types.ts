// Kubernetes-shaped objects ovnode acts on: Namespace, Pod, and Kube-OVN's Subnet,
// SecurityGroup, Vip, ProviderNetwork and Vlan, and networking.k8s.io/v1 NetworkPolicy. Field
// names and meanings are those of Kubernetes and Kube-OVN, so users' existing YAML works
// unchanged. These are the validated, defaulted forms: every optional list is present (possibly
// empty).

export interface ObjectMeta {
  name: string;
  /** Empty for cluster-scoped kinds (all but Pod and NetworkPolicy). */
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Set for objects from the Kubernetes API (a pod's uid tells its sandboxes apart from a namesake's). */
  uid?: string;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values: string[];
}

/** An absent selector and `{}` both select everything (Kubernetes semantics). */
export interface LabelSelector {
  matchLabels: Record<string, string>;
  matchExpressions: LabelSelectorRequirement[];
}

export interface NamespaceObj { kind: 'Namespace'; metadata: ObjectMeta }

export interface ContainerPort { name?: string; containerPort: number; protocol: 'TCP' | 'UDP' | 'SCTP' }
export interface PodObj {
  kind: 'Pod';
  metadata: ObjectMeta;
  spec: {
    containers: Array<{ name: string; ports: ContainerPort[] }>;
    /** The node the pod is bound to (Kubernetes API only). */
    nodeName?: string;
    /** Host-network pods have no attachment of ours and are not policy members. */
    hostNetwork?: boolean;
  };
  /** Kubernetes API only. */
  status?: {
    /** The pod ran to completion (phase Succeeded or Failed): its sandbox is gone. */
    finished?: boolean;
    /** metadata.deletionTimestamp is set: its sandbox is going, its address soon another pod's. */
    deleting?: boolean;
    /** metadata.creationTimestamp (RFC 3339, so later sorts later). */
    createdAt?: string;
  };
}

export type SubnetAclAction = 'allow' | 'allow-related' | 'allow-stateless' | 'drop' | 'reject';
export interface SubnetAcl {
  action: SubnetAclAction;
  direction: 'from-lport' | 'to-lport';
  match: string;
  priority: number;
}
export interface SubnetObj {
  kind: 'Subnet';
  metadata: ObjectMeta;
  spec: {
    /** One CIDR or an IPv4,IPv6 pair. */
    cidrBlock: string;
    /** Defaults to the first address of each CIDR. */
    gateway: string;
    excludeIps: string[];
    acls: SubnetAcl[];
    namespaces: string[];
    provider: string;
    private: boolean;
    allowSubnets: string[];
    protocol?: 'IPv4' | 'IPv6' | 'Dual';
    vpc?: string;
    /** The Vlan (by name) that makes this an underlay subnet; absent for an overlay one. */
    vlan?: string;
    /**
     * An underlay subnet's gateway is OVN's logical router instead of the physical network's
     * router (Kube-OVN's default false: the physical one). Meaningless without `vlan`.
     */
    logicalGateway: boolean;
  };
}

export interface SecurityGroupRule {
  ipVersion: 'ipv4' | 'ipv6';
  protocol: 'all' | 'icmp' | 'tcp' | 'udp';
  /** 1..200; lower number = evaluated first (Kube-OVN). */
  priority: number;
  remoteType: 'address' | 'securityGroup';
  remoteAddress?: string;
  remoteSecurityGroup?: string;
  portRangeMin?: number;
  portRangeMax?: number;
  policy: 'allow' | 'drop';
}
export interface SecurityGroupObj {
  kind: 'SecurityGroup';
  metadata: ObjectMeta;
  spec: { ingressRules: SecurityGroupRule[]; egressRules: SecurityGroupRule[]; allowSameGroupTraffic: boolean };
}

export interface VipObj {
  kind: 'Vip';
  metadata: ObjectMeta;
  spec: { subnet: string; v4ip?: string; v6ip?: string; macAddress?: string };
}

/** A NIC other than the default one, on the nodes named. */
export interface ProviderNetworkInterface {
  interface: string;
  nodes: string[];
}
/**
 * kubeovn.io/v1 ProviderNetwork: which uplink NIC each node puts into the bridge `br-<name>`,
 * mapped as `<name>:br-<name>` in ovn-bridge-mappings. The name is at most 12 characters.
 */
export interface ProviderNetworkObj {
  kind: 'ProviderNetwork';
  metadata: ObjectMeta;
  spec: {
    /** The NIC of every node not listed in customInterfaces. */
    defaultInterface: string;
    /** Per-node NICs; a node appears in at most one entry. */
    customInterfaces: ProviderNetworkInterface[];
    /** Nodes that do not join the network (Kube-OVN ignores this once nodeSelector is set). */
    excludeNodes: string[];
    /** When set, only the nodes it selects join the network. */
    nodeSelector?: LabelSelector;
  };
}

/** kubeovn.io/v1 Vlan: an 802.1Q tag on a provider network (Kube-OVN makes both immutable). */
export interface VlanObj {
  kind: 'Vlan';
  metadata: ObjectMeta;
  spec: {
    /** 0..4095; 0 means untagged frames. */
    id: number;
    /** The ProviderNetwork's name; it need not exist yet. */
    provider: string;
  };
}

export interface NetworkPolicyPort {
  protocol: 'TCP' | 'UDP' | 'SCTP';
  /** A number, a named container port, or absent (all ports). */
  port?: number | string;
  endPort?: number;
}
export interface IpBlock { cidr: string; except: string[] }
export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IpBlock;
}
export interface NetworkPolicyRule { peers: NetworkPolicyPeer[]; ports: NetworkPolicyPort[] }
export interface NetworkPolicyObj {
  kind: 'NetworkPolicy';
  metadata: ObjectMeta;
  spec: {
    podSelector: LabelSelector;
    policyTypes: Array<'Ingress' | 'Egress'>;
    /** `from` peers of each ingress rule (empty peers = from anywhere). */
    ingress: NetworkPolicyRule[];
    /** `to` peers of each egress rule (empty peers = to anywhere). */
    egress: NetworkPolicyRule[];
  };
}

export type KubeObject =
  | NamespaceObj
  | PodObj
  | SubnetObj
  | SecurityGroupObj
  | VipObj
  | ProviderNetworkObj
  | VlanObj
  | NetworkPolicyObj;
export type Kind = KubeObject['kind'];
export type ObjectOf<K extends Kind> = Extract<KubeObject, { kind: K }>;

/** An object that could not be accepted, with a message a user can act on. */
export interface RejectedObject {
  source: string;
  kind?: string;
  name?: string;
  namespace?: string;
  message: string;
}

/**
 * Where objects come from: a manifests directory in embedded mode, the Kubernetes API later.
 * Everything downstream depends on this interface only.
 */
/** Which object changed (added, replaced or removed): the store has the current state. */
export interface ObjectChange {
  kind: Kind;
  name: string;
  /** "" for cluster-scoped kinds. */
  namespace: string;
}

/** A store that also says which object each change was about, for consumers that work incrementally. */
export interface ObjectChanges {
  onObjectChange(listener: (change: ObjectChange) => void): () => void;
}

export interface ObjectStore {
  list<K extends Kind>(kind: K): ReadonlyArray<ObjectOf<K>>;
  /** Namespaced kinds need `namespace`; cluster-scoped kinds ignore it. */
  get<K extends Kind>(kind: K, name: string, namespace?: string): ObjectOf<K> | undefined;
  /** Objects refused at the last load, with why. */
  rejected(): ReadonlyArray<RejectedObject>;
  /** Called after every change of the accepted object set (coalesced). */
  onChange(listener: () => void): () => void;
}
