//! Disks on another host (`--input-host`): read over ssh, never written.
//! `stat` says what a path is and its size, `head -c` its first bytes (the
//! format when the config does not say), `cat` streams it (checksummed on
//! arrival by `diskcopy::copy_stream`). ssh runs in batch mode (a prompt
//! would hang a migration) with the operator's options (`-o OPT`).

use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

/// An ssh destination: `[USER@]HOST` or `ssh://[USER@]HOST[:PORT]`.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    pub(crate) dest: String,
    opts: Vec<String>,
}

/// What `stat` says of a remote path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteStat {
    pub(crate) block: bool,
    pub(crate) size: u64,
    pub(crate) allocated: u64,
    /// mtime and ctime (seconds): a write changes them.
    pub(crate) times: (u64, u64),
}

/// Quotes a word for the remote shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Remote {
    pub(crate) fn new(dest: &str, opts: &[String]) -> Result<Remote> {
        if dest.is_empty() || dest.starts_with('-') || dest.contains(char::is_whitespace) {
            bail!("--input-host {dest:?}: expected [USER@]HOST or ssh://[USER@]HOST[:PORT]");
        }
        Ok(Remote {
            dest: dest.to_owned(),
            opts: opts.to_vec(),
        })
    }

    fn command(&self, script: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(["-o", "BatchMode=yes"]);
        for o in &self.opts {
            c.arg("-o").arg(o);
        }
        c.arg(&self.dest).arg("--").arg(script);
        c.stdin(Stdio::null());
        c
    }

    fn output(&self, script: &str) -> Result<String> {
        let out = self
            .command(script)
            .output()
            .context("running ssh (install openssh-client)")?;
        if !out.status.success() {
            bail!(
                "ssh {}: {}",
                self.dest,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// What `path` is there (following links).
    pub(crate) fn stat(&self, path: &str) -> Result<RemoteStat> {
        let q = quote(path);
        let out = self
            .output(&format!(
                "stat -L -c '%F|%s|%b|%B|%Y|%Z' {q} && if [ -b {q} ]; then blockdev --getsize64 {q}; fi"
            ))
            .with_context(|| format!("{}:{path}", self.dest))?;
        let mut lines = out.lines();
        let f: Vec<&str> = lines.next().unwrap_or("").split('|').collect();
        let num = |i: usize| -> Result<u64> {
            f.get(i)
                .and_then(|v| v.trim().parse().ok())
                .with_context(|| format!("{}:{path}: unexpected stat output {out:?}", self.dest))
        };
        let block = f.first().is_some_and(|k| k.contains("block special"));
        let regular = f.first().is_some_and(|k| k.starts_with("regular"));
        if !block && !regular {
            bail!(
                "{}:{path} is not an image file or a block device ({})",
                self.dest,
                f.first().unwrap_or(&"?")
            );
        }
        let size = if block {
            lines
                .next()
                .and_then(|l| l.trim().parse().ok())
                .with_context(|| {
                    format!("{}:{path}: blockdev --getsize64 said nothing", self.dest)
                })?
        } else {
            num(1)?
        };
        Ok(RemoteStat {
            block,
            size,
            allocated: if block { size } else { num(2)? * num(3)? },
            times: (num(4)?, num(5)?),
        })
    }

    /// The format of a remote image by its first bytes: qcow2 or raw.
    pub(crate) fn probe(&self, path: &str) -> Result<&'static str> {
        let out = self
            .command(&format!("head -c 4 {}", quote(path)))
            .output()
            .context("running ssh")?;
        if !out.status.success() {
            bail!(
                "ssh {}: {}",
                self.dest,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(if out.stdout == b"QFI\xfb" {
            "qcow2"
        } else {
            "raw"
        })
    }

    /// Streams `path` on stdout.
    pub(crate) fn read(&self, path: &str) -> Result<Child> {
        use std::os::unix::process::CommandExt;
        self.command(&format!("cat {}", quote(path)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .context("running ssh (install openssh-client)")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(super::quote("/a b/it's"), "'/a b/it'\\''s'");
        assert!(super::Remote::new("-oProxyCommand=x", &[]).is_err());
        assert!(super::Remote::new("ssh://root@127.0.0.1:2222", &[]).is_ok());
    }
}
