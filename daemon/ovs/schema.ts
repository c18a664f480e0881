// Table and column names of the databases we write, spelled as in their schemas.

export const OVS = {
  db: 'Open_vSwitch',
  root: 'Open_vSwitch',
  bridge: 'Bridge',
  port: 'Port',
  iface: 'Interface',
} as const;

export const NB = {
  db: 'OVN_Northbound',
  global: 'NB_Global',
  ls: 'Logical_Switch',
  lsp: 'Logical_Switch_Port',
  lr: 'Logical_Router',
  lrp: 'Logical_Router_Port',
  lrsr: 'Logical_Router_Static_Route',
} as const;

export const SB = { db: 'OVN_Southbound', global: 'SB_Global', chassis: 'Chassis', pb: 'Port_Binding' } as const;
