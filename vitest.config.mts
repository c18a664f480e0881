import { defineConfig } from 'vitest/config';

// Projects: unit (fakes only, no root, seconds), integration (root, netns, OVS/OVN
// userspace datapath, cnitool) and cluster (below). Integration files run one at a time: each
// starts whole nodes.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], environment: 'node' } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // A real Kubernetes 1.20 cluster (scripts/lab): one for all files, brought up and down by
        // the global setup (a cold first run builds Kubernetes: minutes). Root only.
        test: {
          name: 'cluster',
          include: ['test/cluster/**/*.test.ts'],
          environment: 'node',
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
          globalSetup: ['test/cluster/harness/global-setup.ts'],
        },
      },
    ],
  },
});
