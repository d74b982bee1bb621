//! `inspect`: docker's container JSON (the fields that mean something here).

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::engine::Engine;
use crate::error::Result;
use crate::logs::format_rfc3339_nano;
use crate::records::{ContainerRecord, Status};

/// Unix nanoseconds as docker prints times; 0 is docker's zero time.
pub fn time_string(ns: i64) -> String {
    if ns <= 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    format_rfc3339_nano(UNIX_EPOCH + Duration::from_nanos(ns as u64))
}

impl Engine {
    pub fn inspect(&self, what: &str) -> Result<Value> {
        let rec = self.db.find(what)?;
        Ok(self.details(&rec))
    }

    fn details(&self, rec: &ContainerRecord) -> Value {
        let c = &rec.config;
        let (status, code) = self.live_status(rec);
        let running = matches!(status, Status::Running | Status::Paused);
        let id = &rec.id;
        let mounts: Vec<Value> = c
            .mounts
            .iter()
            .map(|m| {
                let source = match m.kind.as_str() {
                    "volume" => self
                        .paths
                        .root
                        .join("volumes")
                        .join(&m.source)
                        .join("_data")
                        .display()
                        .to_string(),
                    _ => m.source.clone(),
                };
                let mut v = json!({
                    "Type": m.kind,
                    "Source": source,
                    "Destination": m.destination,
                    "Mode": if m.read_only { "ro" } else { "" },
                    "RW": !m.read_only,
                    "Propagation": if m.kind == "bind" { "rprivate" } else { "" },
                });
                if m.kind == "volume" {
                    v["Name"] = json!(m.source);
                    v["Driver"] = json!("local");
                }
                v
            })
            .collect();
        let binds: Vec<String> = c
            .mounts
            .iter()
            .filter(|m| m.kind == "bind" || (m.kind == "volume" && !m.anonymous))
            .map(|m| {
                format!(
                    "{}:{}{}",
                    m.source,
                    m.destination,
                    if m.read_only { ":ro" } else { "" }
                )
            })
            .collect();
        let tmpfs: Map<String, Value> = c
            .mounts
            .iter()
            .filter(|m| m.kind == "tmpfs")
            .map(|m| (m.destination.clone(), json!(m.options.join(","))))
            .collect();
        let exposed: Map<String, Value> = c
            .exposed_ports
            .iter()
            .map(|p| (p.clone(), json!({})))
            .collect();
        let ports: Map<String, Value> = c
            .exposed_ports
            .iter()
            .map(|p| (p.clone(), Value::Null))
            .collect();
        let volumes: Map<String, Value> = c
            .mounts
            .iter()
            .filter(|m| m.anonymous)
            .map(|m| (m.destination.clone(), json!({})))
            .collect();
        let labels: Map<String, Value> = c
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let lower: Vec<String> = c.layers.iter().map(|p| p.display().to_string()).collect();
        json!({
            "Id": id,
            "Created": time_string(rec.created),
            "Path": c.args.first().cloned().unwrap_or_default(),
            "Args": c.args.iter().skip(1).collect::<Vec<_>>(),
            "State": {
                "Status": status.as_str(),
                "Running": running,
                "Paused": status == Status::Paused,
                "Restarting": false,
                "OOMKilled": false,
                "Dead": false,
                "Pid": if running { rec.state.pid } else { 0 },
                "ExitCode": code,
                "Error": rec.state.error,
                "StartedAt": time_string(rec.state.started_at),
                "FinishedAt": time_string(rec.state.finished_at),
            },
            "Image": rec.image_id,
            "ResolvConfPath": self.network_file(rec, "resolv.conf"),
            "HostnamePath": self.network_file(rec, "hostname"),
            "HostsPath": self.network_file(rec, "hosts"),
            "LogPath": self.paths.log_file(id).display().to_string(),
            "Name": format!("/{}", rec.name),
            "RestartCount": rec.state.restart_count,
            "Driver": "overlay",
            "Platform": "linux",
            "HostConfig": {
                "Binds": binds,
                "NetworkMode": c.network.to_string(),
                "PortBindings": crate::networking::port_bindings(&c.net),
                "PublishAllPorts": c.net.publish_all,
                "Dns": c.net.dns,
                "ExtraHosts": c.net.extra_hosts.iter().map(|(n, ip)| format!("{n}:{ip}")).collect::<Vec<_>>(),
                "AutoRemove": c.auto_remove,
                "ReadonlyRootfs": c.read_only,
                "Memory": c.memory.unwrap_or(0),
                "NanoCpus": c.cpus.map(|x| (x * 1e9) as i64).unwrap_or(0),
                "PidsLimit": c.pids_limit,
                "CapAdd": c.cap_add,
                "CapDrop": c.cap_drop,
                "SecurityOpt": c.security_opt,
                "Init": c.init,
                "Runtime": c.runtime.display().to_string(),
                "Tmpfs": tmpfs,
                "LogConfig": { "Type": "json-file", "Config": {} },
            },
            "GraphDriver": {
                "Name": "overlay",
                "Data": {
                    "LowerDir": lower.join(":"),
                    "UpperDir": self.paths.upper(id).display().to_string(),
                    "WorkDir": self.paths.work(id).display().to_string(),
                    "MergedDir": self.paths.rootfs(id).display().to_string(),
                },
            },
            "Mounts": mounts,
            "Config": {
                "Hostname": c.hostname,
                "User": c.user,
                "Tty": c.tty,
                "OpenStdin": c.open_stdin,
                "AttachStdin": c.open_stdin,
                "Env": c.env,
                "Cmd": c.cmd,
                "Entrypoint": if c.entrypoint.is_empty() { Value::Null } else { json!(c.entrypoint) },
                "Image": rec.image,
                "WorkingDir": c.working_dir,
                "ExposedPorts": exposed,
                "Volumes": volumes,
                "Labels": labels,
                "StopSignal": c.stop_signal,
                "StopTimeout": c.stop_timeout,
            },
            "NetworkSettings": self.network_settings(rec, running, ports),
        })
    }
}
