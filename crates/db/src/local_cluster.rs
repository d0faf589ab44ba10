//! A private PostgreSQL cluster, for machines where the server binaries are
//! installed but no server is running (a fresh laptop, a CI box).
//!
//! `initdb` refuses to run as root, so as root the cluster is created and run
//! as the `postgres` system user. The cluster listens only on 127.0.0.1 and a
//! socket in its own directory, with trust authentication: it holds test and
//! demo data only.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A cluster started (or found running) in a data directory.
#[derive(Debug)]
pub struct LocalCluster {
    /// The data directory.
    pub dir: PathBuf,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
    as_postgres_user: bool,
}

/// Why the cluster could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start a private PostgreSQL cluster: {0}")]
pub struct ClusterError(String);

impl LocalCluster {
    /// Starts the cluster in `dir` on `port`, creating it first if `dir` holds
    /// none. A cluster already running there is reused.
    ///
    /// # Errors
    ///
    /// [`ClusterError`] when the binaries are missing or a step fails.
    pub fn start(dir: &Path, port: u16) -> Result<Self, ClusterError> {
        let bin = find_bin_dir().ok_or_else(|| {
            ClusterError("no PostgreSQL server binaries (initdb, pg_ctl) were found".to_owned())
        })?;
        let cluster = Self {
            dir: dir.to_path_buf(),
            port,
            bin,
            as_postgres_user: running_as_root(),
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| ClusterError(format!("{}: {e}", dir.display())))?;
        if cluster.as_postgres_user {
            cluster.run(
                "chown",
                &["-R", "postgres:postgres", &dir.to_string_lossy()],
                false,
            )?;
        }
        if !dir.join("PG_VERSION").exists() {
            let d = dir.to_string_lossy();
            cluster.run(
                "initdb",
                &[
                    "-D",
                    &d,
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-N",
                    "-E",
                    "UTF8",
                    "--no-locale",
                ],
                true,
            )?;
        }
        let status = cluster.pg_ctl(&["status"]);
        if !status.is_ok_and(|o| o.status.success()) {
            let d = dir.to_string_lossy().into_owned();
            let options = format!("-k {d} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off");
            let log = format!("{d}/server.log");
            cluster.run(
                "pg_ctl",
                &["-D", &d, "-w", "-l", &log, "-o", &options, "start"],
                true,
            )?;
        }
        Ok(cluster)
    }

    /// The URL of database `name` in this cluster.
    #[must_use]
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Stops the server (fast shutdown).
    ///
    /// # Errors
    ///
    /// [`ClusterError`] if `pg_ctl stop` fails.
    pub fn stop(&self) -> Result<(), ClusterError> {
        let out = self
            .pg_ctl(&["-m", "fast", "stop"])
            .map_err(|e| ClusterError(e.to_string()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ClusterError(
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ))
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> std::io::Result<Output> {
        let d = self.dir.to_string_lossy().into_owned();
        let mut all = vec!["-D", &d];
        all.extend_from_slice(args);
        self.command("pg_ctl", &all, true).output()
    }

    fn command(&self, program: &str, args: &[&str], from_bin: bool) -> Command {
        let path = if from_bin {
            self.bin.join(program).to_string_lossy().into_owned()
        } else {
            program.to_owned()
        };
        if self.as_postgres_user && from_bin {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--", &path]).args(args);
            cmd
        } else {
            let mut cmd = Command::new(path);
            cmd.args(args);
            cmd
        }
    }

    fn run(&self, program: &str, args: &[&str], from_bin: bool) -> Result<(), ClusterError> {
        let out = self
            .command(program, args, from_bin)
            .output()
            .map_err(|e| ClusterError(format!("{program}: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ClusterError(format!(
                "{program} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The directory holding `initdb` and `pg_ctl`: on `PATH`, or Debian's
/// versioned directories (newest first).
fn find_bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").is_file() && p.join("pg_ctl").is_file())
    });
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}
