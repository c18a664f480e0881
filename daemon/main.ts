// ovnoded: the per-node daemon's command line.

import { Command } from 'commander';
import { isOvnodeError } from '../common/errors';
import { DEFAULT_DAEMON_SOCKET } from '../common/protocol';
import { createLogger } from './log';
import { parseOptions, type RawOptions } from './node/options';
import type { ProbeOutcome } from './node/probe';
// Loaded by the commands that use them: kubelet runs `probe` every few seconds, and a probe that
// loaded the whole daemon (native addon included) would cost a node a second of CPU each time.
const lazy = {
  probe: (): typeof import('./node/probe') => require('./node/probe') as typeof import('./node/probe'),
  stackOnly: (): typeof import('./node/stack-only') => require('./node/stack-only') as typeof import('./node/stack-only'),
  start: (): typeof import('./node/start') => require('./node/start') as typeof import('./node/start'),
};

const program = new Command('ovnoded').description('ovnode node daemon: CNI server on OVS/OVN');

program
  .command('run')
  .description('run the daemon')
  .option('--embedded', 'start and supervise our own OVS and OVN under --state-dir (the default; same as --stack embedded)')
  .option('--stack <mode>', 'embedded: start and supervise OVS/OVN; external: use the stack `ovnoded stack` runs on this state dir (DaemonSet)')
  .requiredOption('--state-dir <dir>', 'directory for databases, sockets and logs')
  .option('--socket <path>', `CNI socket, the shim's default when netconf has no daemonSocket (default ${DEFAULT_DAEMON_SOCKET})`)
  .option('--subnet <cidr[,cidr6]>', 'pod subnet: one CIDR or an IPv4,IPv6 pair', '10.16.0.0/16')
  .option('--join-cidr <cidrs>', 'network between the node and its pods: IPv4, or IPv4,IPv6 for dual stack (default 100.64.0.0/16)')
  .option('--service-cidr <cidrs>', 'cluster mode: the Service CIDR(s), comma-separated (default 10.96.0.0/12, or OVNODE_SERVICE_CIDR)')
  .option('--mtu <n>', 'pod interface MTU (default: the --encap-interface MTU less 58 for Geneve, else 1400)')
  .option('--metrics-address <host:port>', 'Prometheus /metrics listen address ("" to disable)', '127.0.0.1:9476')
  .option('--node-name <name>', 'chassis / node name (default: hostname)')
  .option('--encap-ip <ip>', 'Geneve tunnel endpoint address (default: first non-loopback IPv4)')
  .option('--encap-interface <name>', 'end Geneve tunnels on this interface\'s IPv4 address, e.g. an overlay network apart from the API\'s (with --kubernetes also OVNODE_ENCAP_INTERFACE)')
  .option('--kubernetes', 'take objects from the Kubernetes API (in-cluster service account, or --kubeconfig)')
  .option('--kubeconfig <file>', 'kubeconfig for --kubernetes outside a pod (implies --kubernetes)')
  .option('--cni-bin-dir <dir>', 'install the CNI executable here once serving (host /opt/cni/bin)')
  .option('--cni-conf-dir <dir>', 'then write the conflist here (host /etc/cni/net.d)')
  .option('--cni-executable <file>', 'the CNI executable to install (default: dist/bin/ovnode next to this daemon)')
  .option('--manifests <dir>', 'watch this directory for Namespace/Pod/Subnet/SecurityGroup/Vip/NetworkPolicy YAML')
  .option('--reconcile-interval <seconds>', 'period of the loop that removes leaked ports, LSPs, veths and addresses (default 30)')
  .option('--sriov-sysfs-root <dir>', 'find SR-IOV VFs, PFs and representors under this sysfs (default /sys)')
  .option('--sriov-fake-nic', 'TEST DOUBLE: record PF-side VF settings and hw-tc-offload under --sriov-sysfs-root instead of driving a NIC')
  .option('--hw-offload', 'OVS hardware offload: other_config:hw-offload=true, hw-tc-offload on PFs and VF representors')
  .option('--log-level <level>', 'pino log level', 'info')
  .action(async (raw: RawOptions) => {
    const log = createLogger(raw.logLevel);
    let opts;
    try {
      opts = parseOptions(raw);
    } catch (e) {
      process.stderr.write(`ovnoded: ${(e as Error).message}\n`);
      process.exit(2);
    }
    const started = Date.now();
    let node: Awaited<ReturnType<ReturnType<typeof lazy.start>['startNode']>>;
    try {
      node = await lazy.start().startNode(opts, log);
    } catch (e) {
      log.fatal({ err: isOvnodeError(e) ? e.message : String(e) }, 'start-up failed');
      process.exit(1);
    }
    // Announced whatever the log level: supervisors and tests wait for this line.
    log.child({}, { level: 'info' }).info({ socket: opts.socket, metrics: opts.metricsAddress, node: opts.nodeName, subnets: opts.subnets, ms: Date.now() - started }, 'ovnoded ready');
    let stopping = false;
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'stopping');
      node.stop().then(
        () => { log.info('stopped'); log.flush(); process.exit(0); },
        (e: unknown) => { log.error({ err: String(e) }, 'stop failed'); process.exit(1); },
      );
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
    // SIGUSR2: restart hand-over (upgrades): exit, leaving OVS/OVN forwarding; the next ovnoded
    // on this state dir adopts them, so pods see no datapath interruption.
    process.on('SIGUSR2', () => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: 'SIGUSR2' }, 'handing over: OVS/OVN keep running');
      node.handOver().then(
        () => { log.info('handed over'); log.flush(); process.exit(0); },
        (e: unknown) => { log.error({ err: String(e) }, 'hand-over failed'); process.exit(1); },
      );
    });
  });

program
  .command('stack')
  .description('run and supervise only the OVS/OVN programs of a node (the ovnode-ovs pod); SIGTERM stops them')
  .requiredOption('--state-dir <dir>', 'directory for databases, sockets and logs (shared with the daemon)')
  .option('--log-level <level>', 'pino log level', 'info')
  .action(async (raw: { stateDir: string; logLevel: string }) => {
    const log = createLogger(raw.logLevel);
    let stack: Awaited<ReturnType<ReturnType<typeof lazy.stackOnly>['startStackOnly']>>;
    try {
      stack = await lazy.stackOnly().startStackOnly(raw.stateDir, log);
    } catch (e) {
      log.fatal({ err: e }, 'stack start-up failed');
      process.exit(1);
    }
    log.child({}, { level: 'info' }).info({ stateDir: raw.stateDir }, 'stack ready');
    // The supervised programs hold no reference on the event loop (they outlive a daemon): this
    // process lives until a signal says otherwise.
    const keepAlive = setInterval(() => undefined, 2 ** 30);
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'stopping the OVS/OVN stack');
      clearInterval(keepAlive);
      stack.stop().then(
        () => { log.info('stopped'); log.flush(); process.exit(0); },
        (e: unknown) => { log.error({ err: e }, 'stop failed'); process.exit(1); },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

const probe = program.command('probe').description('readiness checks (exit 0 when ready)');
probe
  .command('daemon')
  .description("the daemon serves CNI requests on its socket")
  .option('--socket <path>', 'CNI socket', DEFAULT_DAEMON_SOCKET)
  .action(async (raw: { socket: string }) => report(await lazy.probe().probeDaemon(raw.socket)));
probe
  .command('stack')
  .description('every OVS/OVN program of the state dir answers')
  .requiredOption('--state-dir <dir>', 'the stack\'s state directory')
  .action(async (raw: { stateDir: string }) => report(await lazy.probe().probeStack(raw.stateDir)));

function report(outcome: ProbeOutcome): void {
  (outcome.ok ? process.stdout : process.stderr).write(`${outcome.detail}\n`);
  process.exitCode = outcome.ok ? 0 : 1;
}

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`ovnoded: ${String(e)}\n`);
  process.exit(1);
});
