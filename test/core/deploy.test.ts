// The two shipped deployments (deploy/compose*.yaml) and the image they run,
// checked without a Docker engine: the compose files parse, name what exists,
// and the image's own config and environment start the gateway's checks clean.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const deploy = path.join(root, 'deploy');

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string };
  ports?: string[];
  volumes?: string[];
  environment?: Record<string, string>;
  depends_on?: string[] | Record<string, unknown>;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

function loadCompose(file: string): Compose {
  return parse(readFileSync(path.join(deploy, file), 'utf8'), { merge: true }) as Compose;
}

/** Every check a `docker compose config` would make that can fail on a typo here. */
function checkCompose(file: string, compose: Compose): void {
  const named = new Set(Object.keys(compose.volumes ?? {}));
  for (const [name, service] of Object.entries(compose.services)) {
    assert.ok(service.image || service.build, `${file}: ${name} has an image or a build`);
    if (service.build) {
      const context = path.resolve(deploy, service.build.context);
      assert.ok(existsSync(path.join(context, service.build.dockerfile ?? 'Dockerfile')), `${file}: ${name}'s build finds its Dockerfile`);
    }
    for (const port of service.ports ?? []) assert.match(port, /^\d{1,5}:\d{1,5}$/, `${file}: ${name} port ${port}`);
    for (const volume of service.volumes ?? []) {
      const [source = '', target = ''] = volume.split(':');
      assert.ok(target.startsWith('/'), `${file}: ${name} mounts ${volume} at an absolute path`);
      if (source.startsWith('.') || source.startsWith('/')) assert.ok(existsSync(path.resolve(deploy, source)), `${file}: ${name} mounts ${source}, which exists`);
      else assert.ok(named.has(source), `${file}: ${name}'s volume ${source} is declared under volumes:`);
    }
    const deps = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
    for (const dep of deps) assert.ok(compose.services[dep], `${file}: ${name} depends on ${dep}, a service`);
  }
}

function dockerfileEnv(): Record<string, string> {
  const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const runtime = dockerfile.split(/^FROM\s/m).at(-1)!;
  const env: Record<string, string> = {};
  for (const line of runtime.matchAll(/^ENV\s+(.*)$/gm)) for (const pair of line[1]!.matchAll(/(\w+)=(\S+)/g)) env[pair[1]!] = pair[2]!;
  return env;
}

async function checkConfig(env: Record<string, string>): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, [path.join(root, 'bin/lanegate.mjs'), 'check-config'], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, out: e.stderr };
  }
}

describe('deployment', () => {
  it('compose – single instance: one gateway built from the Dockerfile, its data on a volume', () => {
    const compose = loadCompose('compose.yaml');
    checkCompose('compose.yaml', compose);
    const gateway = compose.services.gateway!;
    assert.deepEqual(gateway.ports, ['8787:8787']);
    assert.ok(gateway.volumes?.some((v) => v.endsWith(':/app/data')));
  });

  it('compose – three replicas share Redis; Prometheus scrapes each; Grafana loads the shipped dashboards', () => {
    const compose = loadCompose('compose.replicas.yaml');
    checkCompose('compose.replicas.yaml', compose);
    const gateways = Object.keys(compose.services).filter((n) => n.startsWith('gateway-'));
    assert.equal(gateways.length, 3);
    const hostPorts = new Set<string>();
    for (const name of gateways) {
      const s = compose.services[name]!;
      assert.equal(s.environment?.REDIS_URL, 'redis://redis:6379');
      assert.equal(s.environment?.AUDIT_SINK, 'redis');
      assert.ok(compose.services.redis, 'a redis service');
      hostPorts.add(s.ports![0]!.split(':')[0]!);
    }
    assert.equal(hostPorts.size, 3, 'each replica its own host port');

    const prometheus = parse(readFileSync(path.join(deploy, 'prometheus/prometheus.yml'), 'utf8')) as { scrape_configs: Array<{ metrics_path: string; static_configs: Array<{ targets: string[] }> }> };
    const targets = prometheus.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    assert.deepEqual(targets.sort(), gateways.map((g) => `${g}:8787`).sort());
    assert.ok(compose.services.prometheus!.volumes!.some((v) => v.startsWith('./prometheus/prometheus.yml:')));

    const grafana = compose.services.grafana!;
    const dashboardsMount = grafana.volumes!.find((v) => v.startsWith('../dashboards:'))!.split(':')[1];
    const provider = parse(readFileSync(path.join(deploy, 'grafana/provisioning/dashboards/lanegate.yaml'), 'utf8')) as { providers: Array<{ options: { path: string } }> };
    assert.equal(provider.providers[0]!.options.path, dashboardsMount);
    for (const f of ['lanegate-sre.json', 'lanegate-finance.json']) assert.ok(existsSync(path.join(root, 'dashboards', f)));
    const datasources = parse(readFileSync(path.join(deploy, 'grafana/provisioning/datasources/prometheus.yaml'), 'utf8')) as { datasources: Array<{ type: string; url: string }> };
    assert.equal(datasources.datasources[0]!.type, 'prometheus');
    assert.equal(new URL(datasources.datasources[0]!.url).host, 'prometheus:9090');
  });

  it('image – runs the shipped config out of the box, alone and as a Redis replica', async () => {
    const env = dockerfileEnv();
    const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^COPY config \.\/config$/m, 'the image carries the default config');
    assert.match(dockerfile, /^COPY policies \.\/policies$/m);
    assert.doesNotMatch(dockerfile, /^VOLUME .*\/app\/config/m, 'no anonymous volume over the config');
    assert.equal(path.posix.dirname(env.GATEWAY_CONFIG!), env.LANEGATE_CONFIG_MOUNT);
    // The image's /app is this checkout: its config path, relative to the same layout.
    const shipped = path.join(root, path.posix.relative('/app', env.GATEWAY_CONFIG!));
    const alone = await checkConfig({ GATEWAY_CONFIG: shipped });
    assert.equal(alone.code, 0, alone.out);
    const replica = loadCompose('compose.replicas.yaml').services['gateway-1']!.environment!;
    const shared = await checkConfig({ GATEWAY_CONFIG: shipped, REDIS_URL: replica.REDIS_URL!, AUDIT_SINK: replica.AUDIT_SINK! });
    assert.equal(shared.code, 0, shared.out);
  });

  it('image – a missing config names the mount to use', async () => {
    const env = dockerfileEnv();
    const { code, out } = await checkConfig({ GATEWAY_CONFIG: '/nonexistent/config/gateway.yaml', LANEGATE_CONFIG_MOUNT: env.LANEGATE_CONFIG_MOUNT! });
    assert.equal(code, 1);
    assert.match(out, /mount your config folder at \/app\/config \(docker run -v "\$PWD\/config:\/app\/config:ro"/);
  });

  it('runtime – the image\'s Node (24) is the one CI also tests on, and engines names both', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
    const images = [...readFileSync(path.join(root, 'Dockerfile'), 'utf8').matchAll(/^FROM node:(\d+)/gm)].map((m) => m[1]);
    assert.deepEqual([...new Set(images)], ['24']);
    assert.match(pkg.engines.node, /\^24/);
    assert.match(pkg.engines.node, /\^20/);
    const ci = readFileSync(path.join(root, '.ci/run'), 'utf8');
    assert.match(ci, /node@24/, '.ci/run installs Node 24');
    assert.match(ci, /NODE24.*--test/, '.ci/run runs the suite on it');
  });
});


