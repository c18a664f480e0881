import { defineConfig } from 'vitest/config';

// Two projects: unit (fakes only, no root, seconds) and integration (root, netns, OVS/OVN
// userspace datapath, cnitool). Integration files run one at a time: each starts whole nodes.
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
    ],
  },
});
