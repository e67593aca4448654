// The launcher's pure parts: hostfiles, --include/--exclude, and the command lines of the launchers that
// cannot run here (mpirun, srun, real ssh), checked word for word.
import { describe, expect, it } from 'vitest';
import { parseRunArgs } from '../src/launcher/args.js';
import { HostfileError, limitSlotsPerNode, parseHostfile, selectHosts } from '../src/launcher/hostfile.js';
import { LinePrefixer } from '../src/launcher/line-prefixer.js';
import {
  LaunchError,
  type LaunchPlan,
  mpirunCommand,
  planNodes,
  rankCommands,
  shellQuote,
  srunCommand,
  sshCommands,
} from '../src/launcher/plan.js';

const HOSTFILE = `# the cluster
worker-0 slots=4
worker-1  slots = 2   # a comment

worker-2 slots=2
`;

describe('hostfile', () => {
  it('parses DeepSpeed hostfiles with comments and blank lines', () => {
    expect(parseHostfile(HOSTFILE)).toEqual([
      { host: 'worker-0', slots: [0, 1, 2, 3] },
      { host: 'worker-1', slots: [0, 1] },
      { host: 'worker-2', slots: [0, 1] },
    ]);
  });

  it('names the file and line of a mistake', () => {
    expect(() => parseHostfile('a slots=1\nb slots=x\n', 'hosts')).toThrow(
      'hosts:2: expected "hostname slots=N", got "b slots=x"',
    );
    expect(() => parseHostfile('a slots=0', 'hosts')).toThrow('hosts:1: slots must be a positive integer');
    expect(() => parseHostfile('a slots=1\n\na slots=2', 'hosts')).toThrow('hosts:3: host "a" is listed twice');
    expect(() => parseHostfile('# nothing\n', 'hosts')).toThrow(HostfileError);
  });

  it('--include keeps the named hosts and slots', () => {
    const hosts = parseHostfile(HOSTFILE);
    expect(selectHosts(hosts, 'worker-0:1,3@worker-2')).toEqual([
      { host: 'worker-0', slots: [1, 3] },
      { host: 'worker-2', slots: [0, 1] },
    ]);
  });

  it('--exclude drops the named slots, and bare hosts entirely', () => {
    const hosts = parseHostfile(HOSTFILE);
    expect(selectHosts(hosts, undefined, 'worker-0:0@worker-1')).toEqual([
      { host: 'worker-0', slots: [1, 2, 3] },
      { host: 'worker-2', slots: [0, 1] },
    ]);
  });

  it('rejects unknown hosts and slots, both flags, and empty selections', () => {
    const hosts = parseHostfile(HOSTFILE);
    expect(() => selectHosts(hosts, 'worker-9')).toThrow('--include: host "worker-9" is not in the hostfile');
    expect(() => selectHosts(hosts, 'worker-1:5')).toThrow('--include: worker-1 has no slot 5');
    expect(() => selectHosts(hosts, 'worker-1:a')).toThrow('slot "a" of worker-1 is not an integer');
    expect(() => selectHosts(hosts, 'worker-0', 'worker-1')).toThrow('cannot be used together');
    expect(() => selectHosts(hosts, undefined, 'worker-0@worker-1@worker-2')).toThrow('no slots left');
  });

  it('--nproc-per-node caps each host at its first selected slots', () => {
    const hosts = parseHostfile(HOSTFILE);
    expect(limitSlotsPerNode(hosts, 2).map((h) => h.slots)).toEqual([
      [0, 1],
      [0, 1],
      [0, 1],
    ]);
    expect(() => limitSlotsPerNode(hosts, 3)).toThrow('host worker-1 has only 2 selected slot(s)');
  });
});

function plan(launcher: LaunchPlan['launcher'], hostfile = HOSTFILE): LaunchPlan {
  const { nodes, worldSize } = planNodes(selectHosts(parseHostfile(hostfile), undefined, 'worker-0:2,3'));
  return {
    launcher,
    nodes,
    worldSize,
    masterAddr: 'head',
    masterPort: 29500,
    script: 'train.ts',
    scriptArgs: ['--lr', "3e-4 'x'"],
    cwd: '/work/my job',
    nodeExec: '/usr/bin/node',
    nodeArgs: ['--import', 'file:///tsx/loader.mjs'],
    env: { ZEROFLOW_COMM: 'tcp' },
  };
}

describe('launch commands', () => {
  it('gives each rank the env contract with global and local ranks', () => {
    const p = plan('local');
    const worker1 = p.nodes[1];
    if (!worker1) throw new Error('no node');
    const ranks = rankCommands(p, worker1, 2);
    expect(ranks.map((r) => r.rank)).toEqual([2, 3]);
    expect(ranks[1]?.env).toMatchObject({
      RANK: '3',
      LOCAL_RANK: '1',
      LOCAL_WORLD_SIZE: '2',
      WORLD_SIZE: '6',
      MASTER_ADDR: 'head',
      MASTER_PORT: '29500',
      ZEROFLOW_STORE_HOSTED: '1',
      ZEROFLOW_RESTART_COUNT: '2',
      ZEROFLOW_COMM: 'tcp',
    });
    expect(ranks[0]?.args).toEqual(['--import', 'file:///tsx/loader.mjs', 'train.ts', '--lr', "3e-4 'x'"]);
  });

  it('builds one ssh per node, running a node agent, without the token', () => {
    const lines = sshCommands(
      plan('ssh'),
      {
        ssh: 'ssh -p 2222',
        cliEntry: '/opt/zf/bin.cjs',
        forwarded: { ZEROFLOW_X: 'a b' },
        agentOptions: ['--grace-ms', '100'],
      },
      0,
    );
    expect(lines.map((l) => l.node.host)).toEqual(['worker-0', 'worker-1', 'worker-2']);
    const second = lines[1];
    expect(second?.command).toBe('ssh');
    expect(second?.args.slice(0, 4)).toEqual(['-p', '2222', '-o', 'BatchMode=yes']);
    expect(second?.args[4]).toBe('worker-1');
    expect(second?.args[5]).toBe(
      "cd '/work/my job' && env 'ZEROFLOW_X=a b' ZEROFLOW_COMM=tcp ZEROFLOW_RESTART_COUNT=0 /usr/bin/node /opt/zf/bin.cjs run " +
        '--node-agent --rank-offset 2 --world-size 6 --nproc-per-node 2 --slots 0,1 --master-addr head --master-port 29500 ' +
        `--grace-ms 100 -- train.ts --lr '3e-4 '"'"'x'"'"''`,
    );
    expect(second?.args.join(' ')).not.toContain('TOKEN');
  });

  it('builds the mpirun command line (ranks read OMPI_COMM_WORLD_*)', () => {
    const line = mpirunCommand(plan('mpirun'), 0);
    expect(line.command).toBe('mpirun');
    expect(line.args).toEqual([
      '-np',
      '6',
      '-H',
      'worker-0:2,worker-1:2,worker-2:2',
      '--bind-to',
      'none',
      '--tag-output',
      '-x',
      'ZEROFLOW_COMM=tcp',
      '-x',
      'WORLD_SIZE=6',
      '-x',
      'MASTER_ADDR=head',
      '-x',
      'MASTER_PORT=29500',
      '-x',
      'ZEROFLOW_STORE_HOSTED=1',
      '-x',
      'ZEROFLOW_RESTART_COUNT=0',
      '-x',
      'ZEROFLOW_JOB_TOKEN',
      '/usr/bin/node',
      '--import',
      'file:///tsx/loader.mjs',
      'train.ts',
      '--lr',
      "3e-4 'x'",
    ]);
  });

  it('builds the srun command line (ranks read SLURM_*), and needs even nodes', () => {
    const line = srunCommand(plan('slurm'), 1);
    expect(line.command).toBe('srun');
    expect(line.args).toEqual([
      '--ntasks',
      '6',
      '--nodes',
      '3',
      '--ntasks-per-node',
      '2',
      '--nodelist',
      'worker-0,worker-1,worker-2',
      '--label',
      '--kill-on-bad-exit=1',
      '--export=ALL,ZEROFLOW_COMM=tcp,WORLD_SIZE=6,MASTER_ADDR=head,MASTER_PORT=29500,ZEROFLOW_STORE_HOSTED=1,ZEROFLOW_RESTART_COUNT=1',
      '/usr/bin/node',
      '--import',
      'file:///tsx/loader.mjs',
      'train.ts',
      '--lr',
      "3e-4 'x'",
    ]);
    expect(() => srunCommand(plan('slurm', 'worker-0 slots=4\nworker-1 slots=1\n'), 0)).toThrow(LaunchError);
  });

  it('quotes for a POSIX shell', () => {
    expect(shellQuote('plain/path-1.ts')).toBe('plain/path-1.ts');
    expect(shellQuote("it's")).toBe(`'it'"'"'s'`);
    expect(shellQuote('$HOME')).toBe("'$HOME'");
  });
});

describe('argument splitting', () => {
  it("stops at the script: the script's flags are its own", () => {
    const a = parseRunArgs(['--nproc-per-node', '2', '--comm=tcp', 'train.ts', '--nproc-per-node', '9', '-h']);
    expect(a.values).toMatchObject({ 'nproc-per-node': '2', comm: 'tcp' });
    expect(a.script).toBe('train.ts');
    expect(a.scriptArgs).toEqual(['--nproc-per-node', '9', '-h']);
    expect(parseRunArgs(['--dry-run', '--', '-weird.ts']).script).toBe('-weird.ts');
    expect(() => parseRunArgs(['--bogus', 'x.ts'])).toThrow(/bogus/);
  });
});

describe('line prefixing', () => {
  it('prefixes whole lines, keeps split characters whole, and flushes a partial last line', () => {
    const out: string[] = [];
    const p = new LinePrefixer('[rank 1] ', { write: (t) => out.push(t) > 0 });
    const text = Buffer.from('a\nbé\ncd');
    p.push(text.subarray(0, 4)); // splits "é" in the middle
    p.push(text.subarray(4));
    p.flush();
    expect(out.join('')).toBe('[rank 1] a\n[rank 1] bé\n[rank 1] cd\n');
  });
});
