//! The seeded rack: apps `web`, `api` and `worker`, each with services, processes, builds and
//! releases whose env carries distinctive secrets; three instances; system parameters.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::ids;
use super::model::{App, Build, Instance, Process, Release, Service, System};
use super::state::{default_service, AppState, Launch, State};

/// Password inside the seeded `DATABASE_URL`.
const DB_PASSWORD: &str = "mockrack-db-pw-Q7xK2vN9";
/// Seeded `DATABASE_URL` value.
const DATABASE_URL: &str = "postgres://app:mockrack-db-pw-Q7xK2vN9@db.internal:5432/app";
/// Seeded `SECRET_KEY` value.
const SECRET_KEY: &str = "mockrack-secret-key-3Fh8Lp1Zr6Tw";
/// Seeded `STRIPE_API_KEY` value.
const STRIPE_API_KEY: &str = "sk_live_mockrack_9Yd4Gm2Ks7Vb";

/// Every secret value in the seeded env (the bare DB password too, since it is in a URL).
pub(super) const SECRET_VALUES: &[&str] = &[DATABASE_URL, DB_PASSWORD, SECRET_KEY, STRIPE_API_KEY];

/// Rack domain used for service domains.
const DOMAIN: &str = "mock-rack.convox.example";

/// One seeded app: services `(name, count)`, manifest, and releases `(build, release, desc)`.
struct AppSeed {
    name: &'static str,
    services: &'static [(&'static str, u32)],
    extra_env: &'static str,
    history: &'static [(&'static str, &'static str, &'static str, &'static str)],
}

const APPS: &[AppSeed] = &[
    AppSeed {
        name: "web",
        services: &[("web", 2)],
        extra_env: "",
        history: &[
            ("BWEBHQZKLMA", "RWEBHQZKLMA", "abc1234", "initial deploy"),
            ("BWEBTRXVPQB", "RWEBTRXVPQB", "def5678", "add checkout page"),
        ],
    },
    AppSeed {
        name: "api",
        services: &[("web", 2), ("worker", 1)],
        extra_env: "REDIS_URL=redis://redis.internal:6379/0\n",
        history: &[
            ("BAPIKDMWQZA", "RAPIKDMWQZA", "1a2b3c4", "v1 api"),
            ("BAPIPLFJRTB", "RAPIPLFJRTB", "5d6e7f8", "rate limits"),
        ],
    },
    AppSeed {
        name: "worker",
        services: &[("worker", 3), ("scheduler", 1)],
        extra_env: "QUEUE=default\n",
        history: &[("BWRKNCVBXMA", "RWRKNCVBXMA", "9f8e7d6", "first worker")],
    },
];

/// The initial state.
pub(super) fn state() -> State {
    let now = Utc::now();
    let mut state = State {
        apps: BTreeMap::new(),
        instances: instances(now),
        system: system(),
        system_processes: Vec::new(),
        system_releases: system_releases(now),
        objects: BTreeMap::new(),
        next_instance: 0,
    };
    state.system_processes = system_processes(&mut state);
    for seed in APPS {
        seed_app(&mut state, seed, now);
    }
    state
}

/// The `convox.yml` for a seeded app.
fn manifest(seed: &AppSeed) -> String {
    let mut out = String::from("environment:\n  - NODE_ENV\n  - PORT\nservices:\n");
    for (name, count) in seed.services {
        out.push_str(&format!("  {name}:\n    build: .\n"));
        if *name == "web" {
            out.push_str("    port: 3000\n");
        }
        out.push_str(&format!("    scale:\n      count: {count}\n"));
    }
    out
}

/// The release env for a seeded app: secrets first, then plain settings.
fn env(seed: &AppSeed) -> String {
    format!(
        "DATABASE_URL={DATABASE_URL}\nSECRET_KEY={SECRET_KEY}\nSTRIPE_API_KEY={STRIPE_API_KEY}\n\
         {}NODE_ENV=production\nPORT=3000",
        seed.extra_env
    )
}

fn seed_app(state: &mut State, seed: &AppSeed, now: DateTime<Utc>) {
    let name = seed.name.to_string();
    let manifest = manifest(seed);
    let env = env(seed);
    let mut builds = Vec::new();
    let mut releases = Vec::new();
    let steps = seed.history.len() as i64;
    for (i, (build, release, sha, description)) in seed.history.iter().enumerate() {
        let age = Duration::days(steps - i as i64) + Duration::minutes(7);
        let started = now - age;
        builds.push(Build {
            id: (*build).to_string(),
            app: name.clone(),
            description: (*description).to_string(),
            entrypoint: String::new(),
            git_sha: (*sha).to_string(),
            logs: format!("object:///{name}/build/{build}/logs"),
            manifest: manifest.clone(),
            process: String::new(),
            release: (*release).to_string(),
            reason: String::new(),
            repository: String::new(),
            status: "complete".to_string(),
            started,
            ended: started + Duration::minutes(3),
        });
        releases.push(Release {
            id: (*release).to_string(),
            app: name.clone(),
            build: (*build).to_string(),
            env: env.clone(),
            manifest: manifest.clone(),
            description: (*description).to_string(),
            created: started + Duration::minutes(4),
        });
    }
    let current = releases.last().map(|r| r.id.clone()).unwrap_or_default();
    let services: Vec<Service> = seed
        .services
        .iter()
        .map(|(svc, count)| Service {
            count: *count,
            ..default_service(&name, svc, DOMAIN)
        })
        .collect();
    let mut processes = Vec::new();
    for service in &services {
        let command = if service.name == "web" {
            "npm start"
        } else {
            "npm run worker"
        };
        let launch = Launch {
            command,
            release: &current,
            one_off: false,
        };
        for n in 0..service.count {
            let id = ids::seeded_process_id(&service.name, &format!("{name}/{}/{n}", service.name));
            let mut process = state.new_process(&name, service, &launch, id);
            process.started = now - Duration::hours(i64::from(n) + 1);
            processes.push(process);
        }
    }
    let app = App {
        generation: "3".to_string(),
        locked: false,
        name: name.clone(),
        release: current,
        router: format!("router.{DOMAIN}"),
        status: "running".to_string(),
        parameters: BTreeMap::from([("Internal".to_string(), "No".to_string())]),
    };
    state.apps.insert(
        name,
        AppState {
            app,
            services,
            processes,
            builds,
            releases,
        },
    );
}

fn instances(now: DateTime<Utc>) -> Vec<Instance> {
    (1..=3)
        .map(|n: u8| Instance {
            agent: true,
            cpu: 12.5 * f64::from(n),
            cpu_capacity: 2.0,
            id: format!("i-0a1b2c3d4e5f6000{n}"),
            memory: 20.0 + 7.5 * f64::from(n),
            private_ip: format!("10.0.1.{}", 10 + n),
            processes: 0,
            public_ip: format!("54.210.12.{}", 30 + n),
            status: "running".to_string(),
            started: now - Duration::days(i64::from(n) + 10),
        })
        .collect()
}

fn system() -> System {
    let parameters = [
        ("availability_zones", "us-east-1a,us-east-1b,us-east-1c"),
        ("cidr", "10.0.0.0/16"),
        ("high_availability", "true"),
        ("internal_router", "false"),
        ("node_capacity_type", "on_demand"),
        ("node_disk", "20"),
        ("node_type", "t3.medium"),
        ("proxy_protocol", "false"),
        ("syslog", ""),
    ];
    System {
        count: 3,
        domain: DOMAIN.to_string(),
        name: "mock-rack".to_string(),
        provider: "aws".to_string(),
        rack_domain: format!("rack.{DOMAIN}"),
        region: "us-east-1".to_string(),
        status: "running".to_string(),
        kind: "t3.medium".to_string(),
        version: "3.21.3".to_string(),
        parameters: parameters
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
    }
}

fn system_processes(state: &mut State) -> Vec<Process> {
    [
        ("api", "rack api"),
        ("resolver", "rack resolver"),
        ("router", "nginx-ingress-controller"),
    ]
    .iter()
    .map(|(name, command)| {
        let service = Service {
            cpu: 128,
            memory: 256,
            ..default_service("system", name, DOMAIN)
        };
        let launch = Launch {
            command,
            release: "3.21.3",
            one_off: false,
        };
        let id = ids::seeded_process_id(name, &format!("system/{name}"));
        let mut process = state.new_process("system", &service, &launch, id);
        process.image = format!("convox/convox:3.21.3-{name}");
        process.ports = Vec::new();
        process
    })
    .collect()
}

fn system_releases(now: DateTime<Utc>) -> Vec<Release> {
    [("3.21.2", 30), ("3.21.3", 9)]
        .iter()
        .map(|(version, days)| Release {
            id: (*version).to_string(),
            app: String::new(),
            build: String::new(),
            env: String::new(),
            manifest: String::new(),
            description: format!("rack update to {version}"),
            created: now - Duration::days(*days),
        })
        .collect()
}
