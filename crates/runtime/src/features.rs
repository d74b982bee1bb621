//! `features`: the runtime-spec features document, listing exactly what we implement.

use crate::rootfs::known_option_names;

pub fn features() -> serde_json::Value {
    let mut caps: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    caps.sort();
    let mut mount_options: Vec<&str> = known_option_names();
    mount_options.sort_unstable();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::state::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                    "SCMP_ACT_TRAP"
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
                ],
                "archs": crate::security::seccomp::supported_archs(),
                "knownFlags": [
                    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                    "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
                ],
                "supportedFlags": [
                    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                    "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
                ]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "org.opencontainers.runtime.name": "berth-runtime",
            "org.opencontainers.runtime.version": env!("CARGO_PKG_VERSION")
        }
    })
}

#[cfg(test)]
mod tests {
    /// Everything `features` claims for seccomp must compile into a filter.
    #[test]
    fn listed_seccomp_features_compile() {
        let f = super::features();
        let s = &f["linux"]["seccomp"];
        let names = |k: &str| -> Vec<String> {
            s[k].as_array()
                .expect(k)
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        for action in names("actions") {
            let mut json = serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": action}]
            });
            if action == "SCMP_ACT_NOTIFY" {
                // Compiling doesn't connect to a listener.
                json["listenerPath"] = "/nonexistent".into();
            }
            let sc: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(json).expect("parses");
            assert!(crate::security::seccomp::compile(&sc).is_ok(), "{action}");
        }
        for op in names("operators") {
            let json = serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": 0, "value": 1, "valueTwo": 1, "op": op}]}]
            });
            let sc: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(json).expect("parses");
            assert!(crate::security::seccomp::compile(&sc).is_ok(), "{op}");
        }
        for arch in names("archs") {
            let json =
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]});
            let sc: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(json).expect("parses");
            assert!(crate::security::seccomp::compile(&sc).is_ok(), "{arch}");
        }
    }
}
