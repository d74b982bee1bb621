//! The image config a build carries from step to step, as JSON (unknown fields of a base
//! image are kept as they are). serde_json's maps are sorted, so the same config always
//! serializes to the same bytes — part of what makes a rebuild give the same image id.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// An image config being built.
#[derive(Debug, Clone)]
pub struct Config(pub Value);

impl Config {
    pub fn scratch() -> Config {
        Config(json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        }))
    }

    pub fn parse(bytes: &[u8]) -> Result<Config> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::Other(format!("image config: {e}")))?;
        if !v.is_object() {
            return Err(Error::Other("image config is not a JSON object".into()));
        }
        Ok(Config(v))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // A Value always serializes.
        serde_json::to_vec(&self.0).unwrap_or_default()
    }

    fn obj(&mut self) -> &mut Map<String, Value> {
        if !self.0.is_object() {
            self.0 = json!({});
        }
        match &mut self.0 {
            Value::Object(m) => m,
            _ => unreachable!("made an object above"),
        }
    }

    /// The `config` section (container defaults).
    pub fn container(&mut self) -> &mut Map<String, Value> {
        let c = self.obj().entry("config").or_insert_with(|| json!({}));
        if !c.is_object() {
            *c = json!({});
        }
        match c {
            Value::Object(m) => m,
            _ => unreachable!("made an object above"),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get("config").and_then(|c| c.get(key))
    }

    fn strings(&self, key: &str) -> Vec<String> {
        self.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn env(&self) -> Vec<String> {
        self.strings("Env")
    }

    /// Set or replace `key` in Env.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.env();
        let entry = format!("{key}={value}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
        self.container().insert("Env".into(), json!(env));
    }

    pub fn env_value(&self, key: &str) -> Option<String> {
        self.env().iter().find_map(|e| {
            e.split_once('=')
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    pub fn working_dir(&self) -> String {
        self.get("WorkingDir")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    }

    pub fn user(&self) -> String {
        self.get("User")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    }

    pub fn shell(&self) -> Vec<String> {
        let s = self.strings("Shell");
        if s.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            s
        }
    }

    pub fn onbuild(&self) -> Vec<String> {
        self.strings("OnBuild")
    }

    pub fn set(&mut self, key: &str, v: Value) {
        self.container().insert(key.into(), v);
    }

    /// Add to a map-valued key (Labels, ExposedPorts, Volumes).
    pub fn insert_in(&mut self, key: &str, k: &str, v: Value) {
        let c = self.container();
        let m = c.entry(key).or_insert_with(|| json!({}));
        if !m.is_object() {
            *m = json!({});
        }
        if let Value::Object(m) = m {
            m.insert(k.into(), v);
        }
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.0
            .get("rootfs")
            .and_then(|r| r.get("diff_ids"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Record one step: history entry, `created`, and the new layer's diff id if any.
    pub fn record(&mut self, created: &str, created_by: &str, layer: Option<&str>) {
        let o = self.obj();
        o.insert("created".into(), json!(created));
        let mut h = json!({"created": created, "created_by": created_by, "comment": "berth build"});
        if layer.is_none() {
            h["empty_layer"] = json!(true);
        }
        match o.get_mut("history") {
            Some(Value::Array(a)) => a.push(h),
            _ => {
                o.insert("history".into(), json!([h]));
            }
        }
        if let Some(d) = layer {
            let rootfs = o
                .entry("rootfs")
                .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
            match rootfs.get_mut("diff_ids") {
                Some(Value::Array(a)) => a.push(json!(d)),
                _ => rootfs["diff_ids"] = json!([d]),
            }
        }
    }
}

/// docker's Go duration syntax as HEALTHCHECK flags take it ("30s", "1m30s", "500ms")
/// → nanoseconds.
pub fn parse_duration(s: &str) -> std::result::Result<i64, String> {
    let bad = || format!("invalid duration {s:?}");
    let mut total: f64 = 0.0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Ok(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_record() {
        let mut c = Config::scratch();
        c.set_env("A", "1");
        c.set_env("B", "2");
        c.set_env("A", "3");
        assert_eq!(c.env(), vec!["A=3", "B=2"]);
        c.record("2024-01-01T00:00:00Z", "ENV A=3", None);
        c.record("2024-01-01T00:00:00Z", "COPY a b", Some("sha256:00"));
        assert_eq!(c.diff_ids(), vec!["sha256:00"]);
        assert_eq!(c.0["history"][0]["empty_layer"], json!(true));
        assert_eq!(
            c.to_bytes(),
            Config::parse(&c.to_bytes()).expect("parse").to_bytes()
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert!(parse_duration("5x").is_err());
    }
}
