//! Pull and push progress: one bar per layer on a terminal (stderr), docker's status lines
//! otherwise.

use std::collections::HashMap;
use std::io::{self, IsTerminal};
use std::sync::Mutex;
use std::time::Duration;

use berth_image::registry::Progress;
use berth_image::Digest;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Pull,
    Push,
}

/// Renders [`Progress`] events; shared by the transfer threads.
pub struct TransferView {
    direction: Direction,
    quiet: bool,
    bars: Option<MultiProgress>,
    layers: Mutex<HashMap<Digest, ProgressBar>>,
}

impl TransferView {
    pub fn new(direction: Direction, quiet: bool) -> TransferView {
        let bars = (!quiet && io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        TransferView {
            direction,
            quiet,
            bars,
            layers: Mutex::new(HashMap::new()),
        }
    }

    /// A line above the bars (or on stderr).
    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some(mp) => {
                let _ = mp.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    pub fn event(&self, p: Progress) {
        if self.quiet {
            return;
        }
        let pull = self.direction == Direction::Pull;
        let mounted;
        let word: &str = match &p {
            Progress::Manifest { .. } => return,
            Progress::Waiting { .. } if pull => "Pulling fs layer",
            Progress::Waiting { .. } => "Preparing",
            Progress::AlreadyExists { .. } if pull => "Already exists",
            Progress::AlreadyExists { .. } => "Layer already exists",
            Progress::Mounted { from, .. } => {
                mounted = format!("Mounted from {from}");
                &mounted
            }
            Progress::Transferring { .. } if pull => "Downloading",
            Progress::Transferring { .. } => "Pushing",
            Progress::Transferred { .. } if pull => "Download complete",
            Progress::Transferred { .. } => "Pushed",
            Progress::Extracting { .. } => "Extracting",
            Progress::Extracted { .. } => "Pull complete",
        };
        let short = p.digest().short().to_string();
        let Some(mp) = &self.bars else {
            // Docker's non-terminal output: state changes only.
            if !matches!(
                p,
                Progress::Transferring { .. } | Progress::Extracting { .. }
            ) {
                eprintln!("{short}: {word}");
            }
            return;
        };
        let Ok(mut layers) = self.layers.lock() else {
            return;
        };
        let bar = layers
            .entry(p.digest().clone())
            .or_insert_with(|| {
                let b = mp.add(ProgressBar::new(0));
                b.set_style(text_style());
                b.set_prefix(short);
                b
            })
            .clone();
        drop(layers);
        match p {
            Progress::Transferring { done, total, .. } => {
                if bar.length() != Some(total) {
                    bar.set_style(bar_style());
                    bar.set_length(total);
                }
                bar.set_position(done);
                bar.set_message(word.to_string());
            }
            Progress::Extracting { .. } => {
                bar.set_style(spinner_style());
                bar.set_message(word.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            Progress::AlreadyExists { .. }
            | Progress::Mounted { .. }
            | Progress::Extracted { .. } => {
                bar.set_style(text_style());
                bar.finish_with_message(word.to_string());
            }
            Progress::Transferred { .. } if !pull => {
                bar.set_style(text_style());
                bar.finish_with_message(word.to_string());
            }
            _ => {
                bar.set_style(text_style());
                bar.set_message(word.to_string());
            }
        }
    }

    /// Leave the finished bars on screen, and the cursor below them.
    pub fn finish(&self) {
        let Ok(layers) = self.layers.lock() else {
            return;
        };
        for b in layers.values() {
            if !b.is_finished() {
                b.abandon();
            }
        }
        // indicatif leaves the cursor at the end of the last bar's line.
        if !layers.is_empty() {
            eprintln!();
        }
    }
}

fn text_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix}: {msg:17} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg} {spinner}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}
