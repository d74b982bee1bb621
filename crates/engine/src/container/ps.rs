//! `ps`: one summary per container, with docker's status text.

use serde::Serialize;

use crate::engine::Engine;
use crate::error::Result;
use crate::monitor::now_ns;
use crate::records::{ContainerRecord, Status};

/// One line of `berth ps` (docker's /containers/json fields).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    /// Unix seconds.
    pub created: i64,
    pub state: String,
    pub status: String,
    pub ports: Vec<String>,
    pub labels: Vec<(String, String)>,
}

/// docker's `units.HumanDuration`.
pub fn human_duration(ns: i64) -> String {
    let s = ns.max(0) / 1_000_000_000;
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if d < 14 => format!("{d} days"),
        _ if d < 56 => format!("{} weeks", d / 7),
        _ if d < 730 => format!("{} months", d / 30),
        _ => format!("{} years", d / 365),
    }
}

impl Engine {
    /// Containers, newest first; without `all` only running (and paused) ones.
    pub fn list(&self, all: bool) -> Result<Vec<ContainerSummary>> {
        let now = now_ns();
        let mut out = Vec::new();
        for rec in self.db.list()? {
            let (status, code) = self.live_status(&rec);
            if !all && !matches!(status, Status::Running | Status::Paused) {
                continue;
            }
            out.push(self.summary(&rec, status, code, now));
        }
        Ok(out)
    }

    fn summary(
        &self,
        rec: &ContainerRecord,
        status: Status,
        code: i32,
        now: i64,
    ) -> ContainerSummary {
        let text = match status {
            Status::Created => "Created".to_string(),
            Status::Running => format!("Up {}", human_duration(now - rec.state.started_at)),
            Status::Paused => format!("Up {} (Paused)", human_duration(now - rec.state.started_at)),
            Status::Exited if rec.state.finished_at == 0 => format!("Exited ({code})"),
            Status::Exited => format!(
                "Exited ({code}) {} ago",
                human_duration(now - rec.state.finished_at)
            ),
        };
        ContainerSummary {
            id: rec.id.clone(),
            names: vec![format!("/{}", rec.name)],
            image: rec.image.clone(),
            image_id: rec.image_id.clone(),
            command: shell_join(&rec.config.args),
            created: rec.created / 1_000_000_000,
            state: status.as_str().to_string(),
            status: text,
            ports: self.port_summary(&rec.id),
            labels: rec.config.labels.clone(),
        }
    }
}

/// The argv as one line, quoting words with spaces (for display only).
pub fn shell_join(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
