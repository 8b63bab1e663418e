//! The in-memory rack: apps with their services, processes, builds and releases, plus the
//! instances and system settings. Lives behind the [`super::MockRack`] mutex.

use std::collections::BTreeMap;

use chrono::Utc;

use super::error::{MockError, MockResult};
use super::ids;
use super::model::{App, Build, Instance, Process, Release, Service, ServicePort, System};

/// Everything the mock rack knows.
#[derive(Debug)]
pub(super) struct State {
    pub(super) apps: BTreeMap<String, AppState>,
    pub(super) instances: Vec<Instance>,
    pub(super) system: System,
    pub(super) system_processes: Vec<Process>,
    pub(super) system_releases: Vec<Release>,
    /// Uploaded objects (`<app>/<key>`) and their sizes; bodies are counted, not kept.
    pub(super) objects: BTreeMap<String, u64>,
    /// Round-robin cursor for placing new processes on instances.
    pub(super) next_instance: usize,
}

/// One app and what belongs to it; `builds` and `releases` are oldest first.
#[derive(Debug)]
pub(super) struct AppState {
    pub(super) app: App,
    pub(super) services: Vec<Service>,
    pub(super) processes: Vec<Process>,
    pub(super) builds: Vec<Build>,
    pub(super) releases: Vec<Release>,
}

/// What a new process runs and from which release.
pub(super) struct Launch<'a> {
    pub(super) command: &'a str,
    pub(super) release: &'a str,
    pub(super) one_off: bool,
}

/// The 404 for an unknown app.
pub(super) fn no_such_app(name: &str) -> MockError {
    MockError::not_found(format!("no such app: {name}"))
}

impl State {
    /// The app called `name`, or 404.
    pub(super) fn app(&self, name: &str) -> MockResult<&AppState> {
        self.apps.get(name).ok_or_else(|| no_such_app(name))
    }

    /// The app called `name` for changing, or 404.
    pub(super) fn app_mut(&mut self, name: &str) -> MockResult<&mut AppState> {
        self.apps.get_mut(name).ok_or_else(|| no_such_app(name))
    }

    /// Picks the next instance (round robin) for a new process: `(instance id, private ip)`.
    fn place(&mut self) -> (String, String) {
        let count = self.instances.len();
        if count == 0 {
            return (String::new(), String::new());
        }
        let index = self.next_instance % count;
        self.next_instance = self.next_instance.wrapping_add(1);
        let instance = &self.instances[index];
        (instance.id.clone(), instance.private_ip.clone())
    }

    /// Builds a new running process of `service` in `app`, placed on an instance.
    pub(super) fn new_process(
        &mut self,
        app: &str,
        service: &Service,
        launch: &Launch<'_>,
        id: String,
    ) -> Process {
        let (instance, host) = self.place();
        Process {
            id,
            app: app.to_string(),
            command: launch.command.to_string(),
            cpu: f64::from(service.cpu),
            gpu: service.gpu,
            host,
            image: format!("registry.mock-rack.internal/{app}:{}", launch.release),
            instance,
            memory: f64::from(service.memory),
            name: service.name.clone(),
            ports: service
                .ports
                .iter()
                .map(|p| format!("{}:{}", p.balancer, p.container))
                .collect(),
            release: launch.release.to_string(),
            started: Utc::now(),
            status: "running".to_string(),
            one_off: launch.one_off,
        }
    }

    /// Makes `app`'s `service` have exactly `count` service (not one-off) processes.
    pub(super) fn scale(&mut self, app: &str, service: &str, count: usize) -> MockResult<()> {
        let (svc, release, current) = {
            let entry = self.app(app)?;
            let svc = entry
                .services
                .iter()
                .find(|s| s.name == service)
                .cloned()
                .ok_or_else(|| MockError::not_found(format!("no such service: {service}")))?;
            let current = entry
                .processes
                .iter()
                .filter(|p| p.name == service && !p.one_off)
                .count();
            (svc, entry.app.release.clone(), current)
        };
        let launch = Launch {
            command: "",
            release: &release,
            one_off: false,
        };
        let added: Vec<Process> = (current..count)
            .map(|_| self.new_process(app, &svc, &launch, ids::process_id(service)))
            .collect();
        let entry = self.app_mut(app)?;
        let mut keep = count;
        entry.processes.retain(|p| {
            if p.name != service || p.one_off {
                return true;
            }
            if keep == 0 {
                return false;
            }
            keep -= 1;
            true
        });
        entry.processes.extend(added);
        Ok(())
    }

    /// Replaces the service processes of `app` (only `service` if given) with fresh ones.
    pub(super) fn restart(&mut self, app: &str, service: Option<&str>) -> MockResult<()> {
        let services: Vec<(String, usize)> = {
            let entry = self.app(app)?;
            entry
                .services
                .iter()
                .filter(|s| service.is_none_or(|name| s.name == name))
                .map(|s| (s.name.clone(), s.count as usize))
                .collect()
        };
        if let Some(name) = service {
            if services.is_empty() {
                return Err(MockError::not_found(format!("no such service: {name}")));
            }
        }
        for (name, count) in services {
            self.scale(app, &name, 0)?;
            self.scale(app, &name, count)?;
        }
        Ok(())
    }

    /// Adds services named in `manifest` that `app` lacks, each with one process.
    pub(super) fn ensure_services(&mut self, app: &str, manifest: &str) -> MockResult<()> {
        let domain = self.system.domain.clone();
        let missing: Vec<String> = {
            let entry = self.app(app)?;
            manifest_services(manifest)
                .into_iter()
                .filter(|name| entry.services.iter().all(|s| &s.name != name))
                .collect()
        };
        for name in missing {
            let service = default_service(app, &name, &domain);
            self.app_mut(app)?.services.push(service);
            self.scale(app, &name, 1)?;
        }
        Ok(())
    }
}

impl AppState {
    /// The newest release, if any.
    pub(super) fn latest_release(&self) -> Option<&Release> {
        self.releases.last()
    }

    /// The build with `id`, or 404.
    pub(super) fn build(&self, id: &str) -> MockResult<&Build> {
        self.builds
            .iter()
            .find(|b| b.id == id)
            .ok_or_else(|| MockError::not_found(format!("no such build: {id}")))
    }

    /// The release with `id`, or 404.
    pub(super) fn release(&self, id: &str) -> MockResult<&Release> {
        self.releases
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| MockError::not_found(format!("no such release: {id}")))
    }

    /// The process with `pid`, or 404.
    pub(super) fn process(&self, pid: &str) -> MockResult<&Process> {
        self.processes
            .iter()
            .find(|p| p.id == pid)
            .ok_or_else(|| MockError::not_found(format!("no such process: {pid}")))
    }
}

/// A service as a new manifest entry would get it: `web` listens on 443 → 3000.
pub(super) fn default_service(app: &str, name: &str, domain: &str) -> Service {
    let web = name == "web";
    Service {
        count: 1,
        cpu: 256,
        domain: if web {
            format!("{name}.{app}.{domain}")
        } else {
            String::new()
        },
        gpu: 0,
        memory: 512,
        name: name.to_string(),
        ports: if web {
            vec![ServicePort {
                balancer: 443,
                certificate: String::new(),
                container: 3000,
            }]
        } else {
            Vec::new()
        },
    }
}

/// The service names of a `convox.yml`: the two-space-indented keys under `services:`.
pub(super) fn manifest_services(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            inside = line.trim_end() == "services:";
            continue;
        }
        let Some(rest) = line.strip_prefix("  ") else {
            continue;
        };
        if inside && !rest.starts_with(' ') {
            if let Some(name) = rest.trim_end().strip_suffix(':') {
                names.push(name.trim().to_string());
            }
        }
    }
    names
}
