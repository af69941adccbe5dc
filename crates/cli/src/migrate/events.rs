//! What a migration tells while it runs, three ways: on a terminal, phase
//! lines and progress bars (indicatif) on stderr; with `--json`, nothing
//! until the report; with `--machine-readable`, one JSON object per line
//! on stdout for every event (`phase-start`, `progress`, `warning`,
//! `phase-end`, and the report last as `result`), so that automation never
//! parses human text. The shapes are in docs/json.md.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::json;

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Human,
    Json,
    Machine,
}

/// One phase's time, for the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PhaseTime {
    pub(crate) phase: &'static str,
    pub(crate) seconds: f64,
}

pub(crate) struct Events {
    /// The per-guest state file, once the guest is known (not in a dry run).
    pub(crate) state: Option<super::state::State>,
    style: Style,
    current: Option<(&'static str, Instant)>,
    pub(crate) phases: Vec<PhaseTime>,
    bar: Option<ProgressBar>,
    last_line: Option<Instant>,
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

impl Events {
    pub(crate) fn new(style: Style) -> Events {
        Events {
            state: None,
            style,
            current: None,
            phases: Vec::new(),
            bar: None,
            last_line: None,
        }
    }

    #[allow(clippy::print_stdout)]
    fn line(&self, v: &serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }

    /// The phase running now.
    pub(crate) fn phase(&self) -> Option<&'static str> {
        self.current.map(|c| c.0)
    }

    /// Ends the current phase (if any) and starts `name`.
    pub(crate) fn start(&mut self, name: &'static str) {
        self.end();
        self.current = Some((name, Instant::now()));
        if let Some(st) = &mut self.state {
            st.doc.phase = Some(name.to_owned());
            st.doc.progress = None;
            let _ = st.write();
        }
        match self.style {
            Style::Machine => self.line(&json!({"event": "phase-start", "phase": name})),
            Style::Human => self.note(&format!("[{name}]")),
            Style::Json => {}
        }
    }

    /// Ends the current phase.
    pub(crate) fn end(&mut self) {
        self.done_bar();
        if let Some((name, t)) = self.current.take() {
            let seconds = secs(t.elapsed());
            self.phases.push(PhaseTime {
                phase: name,
                seconds,
            });
            if let Some(st) = &mut self.state {
                st.doc
                    .phases
                    .push(json!({"phase": name, "seconds": seconds}));
                let _ = st.write();
            }
            if self.style == Style::Machine {
                self.line(&json!({"event": "phase-end", "phase": name, "seconds": seconds}));
            }
        }
    }

    /// A progress line for humans.
    #[allow(clippy::print_stderr)]
    pub(crate) fn note(&self, msg: &str) {
        if self.style == Style::Human {
            match &self.bar {
                Some(b) => b.println(format!("xen2kvm: {msg}")),
                None => eprintln!("xen2kvm: {msg}"),
            }
        }
    }

    /// A warning: on stderr for humans, an event for machines (and in the
    /// report either way).
    #[allow(clippy::print_stderr)]
    pub(crate) fn warn(&self, msg: &str) {
        match self.style {
            Style::Human => eprintln!("xen2kvm: warning: {msg}"),
            Style::Machine => self.line(&json!({"event": "warning", "message": msg})),
            Style::Json => {}
        }
    }

    /// Starts a progress bar over `total` bytes for `what` (`N/M` = this
    /// item of all).
    pub(crate) fn bar(&mut self, what: &str, n: usize, m: usize, total: u64) {
        self.done_bar();
        if self.style == Style::Human {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "xen2kvm: {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_message(format!("({n}/{m}) {what}"));
            self.bar = Some(b);
        }
        if self.style == Style::Machine {
            self.line(&json!({"event": "progress", "phase": self.phase(), "item": n, "items": m, "what": what, "done": 0, "total": total}));
        }
        self.last_line = Some(Instant::now());
    }

    /// Progress of the current bar. Machine lines at most once a second.
    pub(crate) fn progress(&mut self, n: usize, m: usize, done: u64, total: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
        if let Some(st) = &mut self.state {
            st.progress(super::state::DiskProgress {
                item: n,
                items: m,
                done,
                total,
            });
        }
        if self.style == Style::Machine {
            let due = self
                .last_line
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
            if due || done == total {
                self.last_line = Some(Instant::now());
                self.line(&json!({"event": "progress", "phase": self.phase(), "item": n, "items": m, "done": done, "total": total}));
            }
        }
    }

    fn done_bar(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    /// The final report, as a `result` event.
    pub(crate) fn result(&mut self, report: &serde_json::Value) {
        self.end();
        if self.style == Style::Machine {
            self.line(&json!({"event": "result", "report": report}));
        }
    }
}
